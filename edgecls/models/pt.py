"""edgecls's own `.pt` format: a state dict plus the spec, loadable with torch.load(weights_only=True) (no pickled code).

It lives with the model zoo, not in the device runtime, because loading one rebuilds the architecture (timm)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BackendUnavailableError, ModelFileError, require
from ..runtime.artifacts import atomic_write_with, missing_model_file, publish, staging
from ..runtime.spec import ModelSpec
from .registry import create_model
from .structure import fit_to_state_dict

PT_FORMAT = "edgecls.pt/1"
TORCH_FLOOR = (2, 6)  # torch.load(weights_only=True) is the safe loader only from 2.6 (CVE-2025-32434 before it)


def require_torch():
    """torch, at a version whose weights_only loader is safe, or BackendUnavailableError saying what to install."""
    torch = require("torch", "torch")
    check_torch_version(torch.__version__)
    return torch


def check_torch_version(version: str) -> None:
    parts = version.split("+")[0].split(".")
    try:
        have = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        return  # a development build without a plain version: trust it
    if have < TORCH_FLOOR:
        raise BackendUnavailableError(
            f"torch {version} is installed, but edgecls loads .pt files only with torch >= "
            f"{'.'.join(map(str, TORCH_FLOOR))}, whose weights_only loader cannot run code hidden in a file. "
            "Upgrade it: pip install 'torch>=2.6' (or pip install 'edgecls[torch]')"
        )


def save_pt(model, spec: ModelSpec, path: str | os.PathLike) -> Path:
    """Write model + spec as an edgecls .pt and its sidecar, staged and published together."""
    torch = require_torch()
    spec = spec.replace(artifact={"format": "pt", "precision": "fp32"}) if not spec.artifact else spec
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {"format": PT_FORMAT, "spec": spec.to_json(indent=None), "state_dict": state}
    final = Path(path)
    with staging(final) as staged:
        torch.save(payload, staged)
        publish(staged, final, spec)
    return final


def embed_pt_spec(path: str | os.PathLike, spec: ModelSpec) -> None:
    torch = require_torch()
    payload = read_pt(path)
    payload["spec"] = spec.to_json(indent=None)
    atomic_write_with(path, lambda tmp: torch.save(payload, tmp))


def read_pt(path: str | os.PathLike) -> dict:
    import pickle
    import zipfile

    torch = require_torch()
    p = Path(path)
    if not p.is_file():
        raise missing_model_file(p)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ModelFileError(
            f"{p} is not a readable edgecls .pt file ({type(exc).__name__}: {str(exc)[:200]}); it is truncated, "
            "corrupt, or holds pickled code, which edgecls never loads. Re-save it with edgecls.save()"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != PT_FORMAT:
        raise ModelFileError(f"{p} is a PyTorch file but not an edgecls model (no '{PT_FORMAT}' header); save it with edgecls.save()")
    if not isinstance(payload.get("spec"), str) or not isinstance(payload.get("state_dict"), dict):
        raise ModelFileError(f"{p} has an edgecls header but no spec/state_dict; the file is damaged, re-save it")
    return payload


def load_pt(path: str | os.PathLike, spec: ModelSpec | None = None, payload: dict | None = None):
    """Rebuild the model from the registry and load its weights: returns (model, spec). payload: read_pt(path), if read."""
    payload = payload if payload is not None else read_pt(path)
    spec = spec or ModelSpec.from_json(payload["spec"])
    model, _ = create_model(spec.arch, num_classes=spec.num_classes, in_chans=spec.input.channels)
    if any(s.step == "prune" for s in spec.lineage):  # channels were removed: resize the modules to the weights
        fit_to_state_dict(model, payload["state_dict"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit arch {spec.arch!r} with {spec.num_classes} classes: {str(exc)[:300]}") from exc
    return model.eval(), spec
