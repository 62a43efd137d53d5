"""Training checkpoints: written atomically every epoch, read back with weights_only=True."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelFileError
from ..runtime.artifacts import atomic_write_with

CKPT_FORMAT = "edgecls.train-checkpoint/1"


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state()[1].tolist(),  # the MT19937 key; position below
        "numpy_pos": int(np.random.get_state()[2]),
        "python": [list(random.getstate()[1]), random.getstate()[2]],
    }


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(("MT19937", np.asarray(s["numpy"], dtype=np.uint32), s["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(s["python"][0]), s["python"][1]))


def save_checkpoint(path: Path, **state) -> None:
    state["format"] = CKPT_FORMAT
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle: report, never unpickle code
        raise ModelFileError(f"training checkpoint {path} cannot be read ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
        raise ModelFileError(f"{path} is not an edgecls training checkpoint")
    return state
