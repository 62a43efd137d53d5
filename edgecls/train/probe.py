"""What this machine does per image for one training setting, measured on a few real batches before choosing one.

A setting is (architecture, input side, frozen stages). With the stem and the first `stages` stages frozen, training
costs: making the cache (decode + preprocess.fast + the frozen prefix, once per image and per mirror image, on
OpenVINO as cached.py runs it), then per epoch one training step of the tail per image and one tail forward per
validation image, then the finish (the whole model on the validation images). The probe times each of these on
real training images: a warm-up batch first (compilation, allocation), then timed batches, so the planner rests on
this machine's numbers under its present load, not on a table from another machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..runtime import preprocess as _pre
from ..runtime.denormals import flush_denormals


@dataclass(frozen=True, order=True)
class Setting:
    arch: str
    size: int  # input side, pixels
    stages: int  # stem + blocks[:stages] frozen and cached; 0: every layer trains on the images (no cache)

    def label(self) -> str:
        if self.stages == 0:
            return f"{self.arch} {self.size}px, every layer trained"
        return f"{self.arch} {self.size}px, stem + stages 0-{self.stages - 1} frozen and cached"


def _timing_model(setting: Setting, classes):
    """The model a probe times: with its ImageNet weights where they are here, else random ones (an architecture the
    recipe trains from scratch is timed too; weights do not change how long a step takes)."""
    from ..errors import WeightsUnavailableError
    from ..models import create_model

    try:
        return create_model(setting.arch, labels=classes, pretrained=True, input_size=setting.size)
    except WeightsUnavailableError:
        return create_model(setting.arch, labels=classes, pretrained=False, input_size=setting.size)


@dataclass
class Cost:
    """Seconds per image of each part of a cached run of `setting`, and the cache's bytes per view."""

    setting: Setting
    cache_s: float  # one view: decode + preprocess + frozen prefix
    step_s: float  # one training image: tail forward + backward + optimizer + EMA
    eval_s: float  # one validation image through the tail (cached activations)
    full_s: float  # one validation image through the whole model (the finish, on the images themselves)
    bytes_per_view: int
    setup_s: float  # building the model and compiling the prefix (paid once per run)
    probe_s: float  # what this probe itself took

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Cost:
        return cls(**{**d, "setting": Setting(**d["setting"])})


def macs(arch: str, size: int, classes: int = 1000) -> int:
    """Multiply-accumulates of one forward pass at `size` px: convolutions and linear layers (what dominates)."""
    from ..models import create_model

    model, _ = create_model(arch, num_classes=classes, input_size=size)
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            total[0] += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in hs:
        h.remove()
    return total[0]


def _images(ds, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ds), size=min(n, len(ds)), replace=False)
    return [ds.pixels(int(i)) for i in idx]


def measure(setting: Setting, ds, *, batch: int = 32, threads: int | None = None, images: int = 40,
            seed: int = 0) -> Cost:
    """Time `setting` on up to `images` real images of `ds` (a warm-up batch, then the rest timed)."""
    import timm.utils

    from .cached import freeze, prefix_runner, split_model

    t_all = time.perf_counter()
    if setting.stages == 0:
        return _measure_full(setting, ds, batch=batch, images=images, seed=seed, t_all=t_all)
    with flush_denormals():
        t0 = time.perf_counter()
        model, spec = _timing_model(setting, ds.classes)
        model = model.to(memory_format=torch.channels_last)
        split = split_model(model, spec, setting.stages, check=False)
        freeze(split)
        run, _ = prefix_runner(split.prefix, spec, "auto", threads)
        imgs = _images(ds, max(images, 16), seed)
        warm = imgs[:8]
        run(np.concatenate([_pre.fast(im, "RGB", spec) for im in warm]))
        setup = time.perf_counter() - t0

        timed = imgs[8:]
        t0 = time.perf_counter()
        feats = [run(np.concatenate([_pre.fast(im, "RGB", spec) for im in timed[s : s + 32]]))
                 for s in range(0, len(timed), 32)]
        cache_s = (time.perf_counter() - t0) / len(timed)
        f = np.concatenate(feats).astype(np.float16)
        bytes_per_view = int(f[0].nbytes)

        # training steps on the real activations, batch rows drawn with replacement up to `batch`
        tail = split.tail.train()
        split.prefix.eval()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, foreach=True)
        ema = timm.utils.ModelEmaV3(model, decay=0.999)
        y = torch.randint(len(ds.classes), (batch,))
        rows = np.random.default_rng(seed).integers(0, len(f), batch)
        x = torch.from_numpy(f[rows].astype(np.float32)).contiguous(memory_format=torch.channels_last)

        def step():
            loss = torch.nn.functional.cross_entropy(tail(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0, foreach=True)
            opt.step()
            ema.update(model)

        step()  # warm-up: allocations, autograd graph
        n_steps = 2
        t0 = time.perf_counter()
        for _ in range(n_steps):
            step()
        step_s = (time.perf_counter() - t0) / (n_steps * batch)

        tail.eval()
        xe = torch.from_numpy(np.repeat(f, max(1, 128 // len(f)), 0).astype(np.float32)).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            tail(xe[:8])
            t0 = time.perf_counter()
            tail(xe)
            eval_s = (time.perf_counter() - t0) / len(xe)

            model.eval()
            xs = np.concatenate([_pre.fast(im, "RGB", spec) for im in timed[:16]])
            t0 = time.perf_counter()
            model(torch.from_numpy(xs).contiguous(memory_format=torch.channels_last))
            full_s = (time.perf_counter() - t0) / len(xs)
    return Cost(setting, cache_s, step_s, eval_s, full_s, bytes_per_view, setup, time.perf_counter() - t_all)


def _measure_full(setting: Setting, ds, *, batch: int, images: int, seed: int, t_all: float) -> Cost:
    """Every layer trains: no cache; each step decodes and preprocesses its images and runs the whole network
    forward and backward; each epoch's validation runs the whole network."""

    batch = min(batch, 16)  # a few steps of a whole network are what a probe can afford
    with flush_denormals():
        t0 = time.perf_counter()
        model, spec = _timing_model(setting, ds.classes)
        model = model.to(memory_format=torch.channels_last).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)
        imgs = _images(ds, max(images, batch), seed)
        setup = time.perf_counter() - t0
        y = torch.randint(len(ds.classes), (batch,))

        def step(chunk):
            x = torch.from_numpy(np.concatenate([_pre.fast(im, "RGB", spec) for im in chunk]))
            loss = torch.nn.functional.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y[: len(chunk)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step(imgs[:batch])
        t0 = time.perf_counter()
        step(imgs[:batch])
        step_s = (time.perf_counter() - t0) / batch
        model.eval()
        with torch.inference_mode():
            xs = torch.from_numpy(np.concatenate([_pre.fast(im, "RGB", spec) for im in imgs[:16]]))
            t0 = time.perf_counter()
            model(xs.contiguous(memory_format=torch.channels_last))
            full_s = (time.perf_counter() - t0) / len(xs)
    return Cost(setting, 0.0, step_s, full_s, full_s, 0, setup, time.perf_counter() - t_all)


__all__ = ["Cost", "Setting", "macs", "measure"]
