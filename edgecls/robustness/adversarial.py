"""Adversarial check: small L-inf attacks crafted on the float PyTorch model, and whether they transfer to its builds.

FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018; fixed step eps/4, no random start) in *pixel space*: on the
model's own uint8 input crop (the Predictor's resize and centre crop), perturbed by at most eps grey levels out of
255 per channel and rounded back to uint8, as a camera frame is. The same uint8 pictures are then given to every
artifact on its own runtime (ONNX Runtime, OpenVINO, LiteRT, ...): the transfer a shipped INT8 build meets when
someone attacks the float model it came from.

Target: the true label when the images are labelled, else the .pt's top-1 on the clean crop, so the figure is the
accuracy (or agreement with the float model) that survives the attack, with Wilson intervals; each artifact is
compared with the reference artifact (the first one: FP32) on the same pictures by McNemar's exact test.

Gradients need the PyTorch model: the source must be an edgecls .pt on normalized float NCHW input.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import stats
from ..errors import AdversarialError, ModelFileError

KIND = "edgecls.robustness.adversarial"
DEFAULT_EPS = (1.0, 2.0, 4.0)
DEFAULT_STEPS = 10


def check_eps(values) -> tuple[float, ...]:
    """Attack budgets in grey levels (L-inf, out of 255): numbers in [1, 255], sorted, duplicates dropped. Below 1 the
    perturbation of a uint8 picture rounds away."""
    if values is None or (not isinstance(values, (str, bytes)) and len(values) == 0):
        return DEFAULT_EPS
    if isinstance(values, (str, bytes, int, float)):
        values = [values]
    out = []
    for v in values:
        try:
            e = float(v)
        except (TypeError, ValueError):
            raise AdversarialError(f"eps {v!r} is not a number; give budgets in grey levels out of 255, e.g. 1 2 4") from None
        if not np.isfinite(e) or not 1 <= e <= 255:
            raise AdversarialError(f"eps {v!r} is out of range: a budget is a number of grey levels in [1, 255] (the "
                                   "pictures are uint8: less than 1 rounds away; 1-8 is the usual small budget)")
        out.append(e)
    return tuple(sorted(set(out)))


def load_source(path: str | Path):
    """(model, spec) of the .pt the attacks are crafted on; ModelFileError for any other file."""
    from ..models.pt import load_pt

    path = Path(path)
    if path.suffix != ".pt":
        raise ModelFileError(f"{path.name}: adversarial attacks are crafted on the PyTorch .pt model (they need gradients, "
                             f"which {path.suffix or 'this file'} graphs do not keep); pass the .pt the artifacts were "
                             "exported from (--attack-model)")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    model, spec = load_pt(path)
    if spec.input.layout != "NCHW" or spec.input.dtype != "float32" or spec.input.normalized_in_graph:
        raise AdversarialError(f"{path.name} takes {spec.input.layout} {spec.input.dtype} input; the attacks need a .pt on "
                               "normalized float NCHW input (what edgecls.save writes)")
    return model.float().eval(), spec


def attack(model, spec, crops: np.ndarray, target: np.ndarray, eps: float, steps: int = DEFAULT_STEPS,
           batch: int = 16) -> np.ndarray:
    """uint8 (N, H, W, C) crops in the model's channel order -> adversarial uint8 crops, each within eps grey levels
    of its source (L-inf). steps=1 is FGSM (one step of eps); more is PGD with step eps/4, projected after each step."""
    import torch

    if steps < 1:
        raise AdversarialError(f"steps={steps}: give 1 (FGSM) or more (PGD)")
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4:
        raise AdversarialError(f"crops must be uint8 (N, H, W, C), got {crops.dtype} {crops.shape}")
    mean = torch.tensor(spec.preprocess.mean, dtype=torch.float32).view(1, -1, 1, 1) * 255
    std = torch.tensor(spec.preprocess.std, dtype=torch.float32).view(1, -1, 1, 1) * 255
    alpha = eps if steps == 1 else eps / 4
    out = []
    for s in range(0, len(crops), batch):
        x0 = torch.from_numpy(np.ascontiguousarray(crops[s : s + batch])).permute(0, 3, 1, 2).float()
        y = torch.from_numpy(np.asarray(target[s : s + batch], np.int64))
        x = x0.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model((x - mean) / std), y)
            (g,) = torch.autograd.grad(loss, x)
            with torch.no_grad():
                x = torch.clamp(torch.min(torch.max(x + alpha * g.sign(), x0 - eps), x0 + eps), 0, 255)
        # rounding to whole grey levels can leave eps by at most 0.5; the clamp keeps the budget exact
        x = torch.min(torch.max(x.detach().round(), x0 - np.floor(eps)), x0 + np.floor(eps)).clamp(0, 255)
        out.append(x.to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.ascontiguousarray(np.concatenate(out))


def model_crops(images: Sequence[np.ndarray], spec) -> np.ndarray:
    """The Predictor's resize + centre crop of each RGB picture, uint8 (N, H, W, C) in the model's channel order."""
    from ..runtime.preprocess import fast_pixels

    crops = [fast_pixels(np.asarray(img), "RGB", spec) for img in images]
    return np.stack([c[..., None] if c.ndim == 2 else c for c in crops])


def _top1(infer, spec, crops: np.ndarray, batch: int = 32) -> np.ndarray:
    from ..runtime.preprocess import to_input

    out = []
    for s in range(0, len(crops), batch):
        x = np.concatenate([to_input(c[..., 0] if c.shape[2] == 1 else c, spec) for c in crops[s : s + batch]])
        out.append(np.asarray(infer(x)).argmax(1))
    return np.concatenate(out)


def evaluate_adversarial(source: str | Path, models: Sequence[str | Path], images, *, eps=None,
                         steps: int = DEFAULT_STEPS, fgsm: bool = True, threads: int | None = None,
                         progress: Callable[[str], None] | None = None) -> dict:
    """Craft FGSM and PGD-`steps` on the `source` .pt at each eps (grey levels) for every image of the ImageSet, and
    measure the .pt (white box) and every artifact in `models` (transfer, each on its own runtime) on the same uint8
    pictures. Returns the JSON-ready result; the first of `models` is the reference of the paired tests."""
    import torch

    from ..runtime.predictor import Predictor

    budgets = check_eps(eps)
    if steps < 2:
        raise AdversarialError(f"steps={steps}: PGD needs 2 or more steps (FGSM is always run as the one-step attack)")
    if len(images) == 0:
        raise AdversarialError("no images to attack")
    model, spec = load_source(source)
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    crops = model_crops(images.images, spec)

    def pt_infer(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    clean_pt = _top1(pt_infer, spec, crops)
    mode = "labels" if images.labels is not None else "agreement"
    target = images.labels if images.labels is not None else clean_pt
    attacks = [("FGSM", 1)] * fgsm + [(f"PGD-{steps}", steps)]
    conditions = {"clean": crops}
    for e in budgets:
        for name, k in attacks:
            conditions[f"{name} eps={e:g}"] = attack(model, spec, crops, target, e, k)
            say(f"crafted {name} at eps {e:g} on {Path(source).name}")
    linf = {c: int(np.abs(p.astype(np.int16) - crops).max()) for c, p in conditions.items()}
    preds = [Predictor(m, threads=threads) for m in models]
    try:
        for p in preds:
            if p.spec.labels != spec.labels:
                raise AdversarialError(f"{p.path.name} has other labels than {Path(source).name}; attacks transfer between "
                                       "builds of one model (its FP32, INT8 and pruned artifacts)")
        rows = [{"name": Path(source).name, "backend": "torch", "precision": "fp32", "role": "white box",
                 "ok": {c: _top1(pt_infer, spec, px) == target for c, px in conditions.items()}}]
        for i, p in enumerate(preds):
            art = p.spec.artifact or {}
            rows.append({"name": p.path.name, "backend": p.backend_name, "precision": art.get("precision", "fp32"),
                         "role": "reference" if i == 0 else "transfer",
                         "ok": {c: _top1(p.infer, p.spec, px) == target for c, px in conditions.items()}})
            say(f"{p.path.name}: " + ", ".join(f"{c} {ok.mean():.3f}" for c, ok in rows[-1]["ok"].items()))
    finally:
        for p in preds:
            p.close()
    ref = rows[1]["ok"] if len(rows) > 1 else None
    out_models = []
    for r in rows:
        cells = {}
        for c, ok in r.pop("ok").items():
            a = stats.accuracy(ok)
            cell = {"n": a.n, "k": a.k, "acc": a.value, "ci95": [a.lo, a.hi]}
            if ref is not None and r["role"] == "transfer":
                d = stats.paired(ref[c], ok)
                cell.update({"difference": d.difference, "difference_ci95": [d.lo, d.hi], "mcnemar_p": d.p_value})
            cells[c] = cell
        out_models.append(r | {"conditions": cells})
    return {"kind": KIND, "source": Path(source).name, "eps": list(budgets), "steps": steps,
            "attacks": [n for n, _ in attacks], "conditions": list(conditions), "linf": linf,
            "data": {"source": images.source, "n": len(images), "mode": mode,
                     "accuracy_means": "top-1 accuracy" if mode == "labels" else
                     f"agreement with {Path(source).name}'s top-1 on the clean crop"},
            "applied": "to the model's uint8 input crop (the Predictor's resize and centre crop), L-inf in grey levels, "
                       "rounded to uint8",
            "models": out_models, "seconds": round(time.perf_counter() - t0, 1)}
