"""Partial fine-tuning: freeze the stem and the first N stages, and optionally train the rest on cached activations.

On a CPU the early, high-resolution stages cost most of a training step (EfficientNet-Lite0 at 224 px: the stem and
blocks 0-4 are ~65% of the MACs and most of the memory traffic). Frozen, they compute the same thing for an image in
every epoch, so `cache_features` runs them once per image (and once per mirrored image, the one augmentation that
survives caching), keeps their output as float16 (in RAM, or on disk in a memory-mapped, resumable store:
featstore.py), and trains only the tail on it.

The cached activations are what the deployed model computes: the prefix runs in eval mode (BatchNorm running
statistics) on `preprocess.fast`, the Predictor's own preprocessing, and `split_model` refuses an architecture whose
tail(prefix(x)) is not model(x). The model that comes out is the whole, ordinary network.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainError
from ..runtime import preprocess as _pre
from ..runtime.spec import ModelSpec

# what each registry family's forward_features does after model.blocks (forward_head does the rest)
_AFTER_BLOCKS = {"efficientnet_lite": ("conv_head", "bn2"), "mobilenetv3": ()}


class Prefix(torch.nn.Module):
    """The frozen part: stem + blocks[:stages]. Shares (does not copy) the model's modules."""

    def __init__(self, model: torch.nn.Module, stages: int):
        super().__init__()
        self.stem = torch.nn.Sequential(model.conv_stem, model.bn1)
        self.blocks = torch.nn.Sequential(*list(model.blocks)[:stages])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class Tail(torch.nn.Module):
    """The trained part: blocks[stages:] + the rest of the network, on the prefix's output."""

    def __init__(self, model: torch.nn.Module, stages: int, after: tuple[str, ...]):
        super().__init__()
        object.__setattr__(self, "_model", model)  # not registered: the tail owns only its own modules
        self.blocks = torch.nn.Sequential(*list(model.blocks)[stages:])
        self.after = torch.nn.Sequential(*(getattr(model, n) for n in after))
        head = [n for n in ("global_pool", "conv_head", "norm_head", "act2", "classifier") if n not in after and hasattr(model, n)]
        self.head = torch.nn.ModuleList(getattr(model, n) for n in head)  # registered so train()/eval() reach them

    def train(self, mode: bool = True):
        super().train(mode)
        self._model.training = mode  # forward_head reads the model's own flag (dropout)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._model.forward_head(self.after(self.blocks(x)))


@dataclass
class Split:
    prefix: Prefix
    tail: Tail
    stages: int


def split_model(model: torch.nn.Module, spec: ModelSpec, stages: int, *, check: bool = True) -> Split:
    """model -> (prefix, tail) at stage `stages`; check: prove tail(prefix(x)) == model(x) on a real-sized input."""
    from ..models import get_arch

    family = get_arch(spec.arch).family
    blocks = getattr(model, "blocks", None)
    if family not in _AFTER_BLOCKS or blocks is None:
        raise TrainError(f"freeze_stages supports the {', '.join(_AFTER_BLOCKS)} families, not {spec.arch!r}")
    if not 1 <= stages <= len(blocks):
        raise TrainError(f"freeze_stages={stages}: {spec.arch} has {len(blocks)} stages (model.blocks); use 1..{len(blocks)}, "
                         "or 0 to train everything")
    split = Split(Prefix(model, stages), Tail(model, stages, _AFTER_BLOCKS[family]), stages)
    if check:
        was = model.training
        model.eval()
        x = torch.randn(2, spec.input.channels, spec.input.height, spec.input.width, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            whole, parts = model(x), split.tail(split.prefix(x))
        model.train(was)
        split.tail.train(was)
        if not torch.allclose(whole, parts, rtol=1e-4, atol=1e-4):
            raise TrainError(f"{spec.arch}: the network does not split at stage {stages} as stem + blocks + head "
                             f"(max |diff| {float((whole - parts).abs().max()):.3g}); train it with freeze_stages: 0")
    return split


def freeze(split: Split) -> None:
    """No gradients into the prefix (autograd then builds no graph through it); the caller keeps it in eval mode."""
    for p in split.prefix.parameters():
        p.requires_grad = False
    split.prefix.eval()


# --- the cache -----------------------------------------------------------------------------------------------
def prefix_runner(prefix: Prefix, spec: ModelSpec, runtime: str, threads: int | None):
    """A function float32 NCHW batch -> prefix output. OpenVINO ran Lite0's prefix 2-3x faster than eager PyTorch
    on this project's 2-core x86 machines (max |diff| 6e-5 on activations up to ~30, below float16 storage's 2e-2)."""
    device = next(prefix.parameters()).device
    if runtime == "openvino" or (runtime == "auto" and device.type == "cpu"):
        try:
            import openvino as ov
        except ImportError:
            if runtime == "openvino":
                from ..errors import BackendUnavailableError

                raise BackendUnavailableError("cache_runtime openvino needs OpenVINO: pip install 'edgecls[openvino]'") from None
        else:
            c, h, w = spec.input.channels, spec.input.height, spec.input.width
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")  # OpenVINO traces via TorchScript
                ovm = ov.convert_model(prefix, example_input=torch.zeros(1, c, h, w), input=[(-1, c, h, w)])
            cfg = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
            if threads:
                cfg["INFERENCE_NUM_THREADS"] = threads
            compiled = ov.Core().compile_model(ovm, "CPU", cfg)
            req = compiled.create_infer_request()
            return lambda x: req.infer([x])[0], "openvino"
    if runtime not in ("auto", "torch", "openvino"):
        raise TrainError(f"cache runtime {runtime!r}: use auto, openvino or torch")

    def run(x):
        with torch.inference_mode():
            return prefix(torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)).float().cpu().numpy()

    return run, "torch"


def prefix_key(split: Split, spec: ModelSpec, ds, views: int) -> str:
    """What a prefix's cached activations depend on: its weights (BatchNorm statistics included), the input and its
    preprocessing, the images and labels, the views."""
    import hashlib

    from .featstore import dataset_key

    h = hashlib.sha256()
    for k, v in split.prefix.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps([spec.preprocess.to_dict(), list(spec.input.shape), split.stages, views]).encode())
    h.update(dataset_key(ds).encode())
    return h.hexdigest()


def cache_features(split: Split, ds, spec: ModelSpec, *, mirror: bool, batch: int = 32, runtime: str = "auto",
                   threads: int | None = None, console=None, what: str = "images",
                   store: str | Path | None = None) -> tuple[np.ndarray, dict]:
    """Prefix activations of every image of `ds` (view 0) and of its mirror image (view 1, when `mirror`), as
    float16 (N, views, C, H, W). The image goes through preprocess.fast exactly as the Predictor's input does;
    the mirror is flipped before preprocessing, as training-time augmentation would. Returns (features, timing).
    store: a folder to keep them in on disk (featstore.py; memory-mapped, resumed where a killed run stopped, reused
    when nothing they depend on changed); None keeps them in RAM.
    console: a rich Console to show a progress bar on (when it is a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .featstore import FeatureStore

    split.prefix.eval()
    views = 2 if mirror else 1
    n = len(ds)
    key = prefix_key(split, spec, ds, views) if store is not None else None
    resumed = FeatureStore.peek(store, key) if store is not None else 0
    t0, c0 = time.perf_counter(), time.process_time()
    run, used = (None, "reused") if resumed >= n else prefix_runner(split.prefix, spec, runtime, threads)
    feats, fs = None, None

    def batch_views(idx) -> np.ndarray:
        imgs = [ds.pixels(i) for i in idx]
        out = [run(np.concatenate([_pre.fast(np.ascontiguousarray(im[:, ::-1]) if v else im, "RGB", spec) for im in imgs]))
               for v in range(views)]
        return np.stack(out, 1).astype(np.float16)

    start = 0
    if store is not None and resumed:
        meta_shape = json.loads((Path(store) / "store.json").read_text())["shape"]
        fs = FeatureStore.open(store, key, n, views, tuple(meta_shape[2:]))
        start = fs.done
    with Progress(TextColumn(f"caching stage-{split.stages} activations of {what}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, disable=console is None or not console.is_terminal, transient=True) as bar:
        task = bar.add_task("cache", total=n, completed=start)
        for s in range(start, n, batch):
            idx = range(s, min(n, s + batch))
            rows = batch_views(idx)
            if store is not None:
                if fs is None:
                    fs = FeatureStore.open(store, key, n, views, rows.shape[2:])
                fs.write(s, rows)
                if (s // batch) % 16 == 15 or s + len(idx) >= n:  # commit every 16 batches: a kill loses at most those
                    fs.commit(s + len(idx))
            else:
                if feats is None:
                    feats = np.empty((n, views, *rows.shape[2:]), np.float16)
                feats[s : s + len(idx)] = rows
            bar.update(task, advance=len(idx))
    if fs is not None:
        feats = fs.array
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return feats, {"runtime": used, "images": n, "views": views, "seconds": wall, "cpu_seconds": cpu,
                   "images_per_s": (n - resumed) * views / max(wall, 1e-9), "bytes": int(feats.nbytes),
                   "resumed_at": resumed, "on_disk": store is not None}


class CachedSet(torch.utils.data.Dataset):
    """(cached activations, label): a random stored view per draw (the image or its mirror, with equal odds). A
    multi-label set's label is its multi-hot row, as float32. With `soft` (N, views, classes): a teacher's logits for
    the same image and view come third, for distillation without running the teacher."""

    def __init__(self, feats: np.ndarray, labels: np.ndarray, soft: np.ndarray | None = None):
        if soft is not None and soft.shape[:2] != feats.shape[:2]:
            raise TrainError(f"teacher logits {soft.shape[:2]} do not match the cached activations {feats.shape[:2]} "
                             "(images, views)")
        self.feats, self.labels, self.soft = feats, labels, soft

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        v = int(torch.randint(self.feats.shape[1], ())) if self.feats.shape[1] > 1 else 0
        y = self.labels[i]
        item = (torch.from_numpy(self.feats[i, v].astype(np.float32)),
                torch.from_numpy(y.astype(np.float32)) if y.ndim else int(y))
        return item if self.soft is None else (*item, torch.from_numpy(np.asarray(self.soft[i, v], np.float32)))


@torch.inference_mode()
def tail_logits(model: torch.nn.Module, spec: ModelSpec, stages: int, feats: np.ndarray, batch: int = 256,
                view: int = 0) -> np.ndarray:
    """Logits of `model` (e.g. the EMA copy) from cached prefix activations (view 0: the image; 1: its mirror)."""
    tail = split_model(model, spec, stages, check=False).tail.eval()
    out = [tail(torch.from_numpy(feats[s : s + batch, view].astype(np.float32)).contiguous(memory_format=torch.channels_last))
           for s in range(0, len(feats), batch)]
    return torch.cat(out).float().numpy()
