"""Training-time augmentation, then the SAME preprocessing code the Predictor runs (preprocess.fast).

Augmentation happens at the image's native resolution (torchvision transforms v2 on uint8 tensors); the result is
then resized/normalized by `preprocess.fast`, so training, validation and deployment share one input pipeline.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.datasets import ArrayDataset
from ..runtime import preprocess as _pre
from ..runtime.spec import ModelSpec
from .config import TrainConfig


class PadCropSameSize(torch.nn.Module):
    """Reflect-pad by `fraction` of the shorter side, then crop a random window of the image's OWN size: a random
    shift that works on a folder of mixed-size pictures (a RandomCrop sized from one image fails on the others)."""

    def __init__(self, fraction: float = 1 / 14):
        super().__init__()
        self.fraction = fraction

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # uint8 CxHxW
        h, w = img.shape[-2:]
        pad = max(1, round(min(h, w) * self.fraction))
        pad = min(pad, h - 1, w - 1) if min(h, w) > 1 else 0  # reflect padding needs pad < size
        if pad == 0:
            return img
        padded = torch.nn.functional.pad(img[None].float(), (pad, pad, pad, pad), mode="reflect")[0].to(img.dtype)
        y, x = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,)))
        return padded[:, y : y + h, x : x + w]


def augmenter(cfg: TrainConfig, spec: ModelSpec, sample_hw: tuple[int, int] | None = None):
    """The training augmentation for cfg (sample_hw is no longer needed: every step works on any image size)."""
    from torchvision.transforms import v2

    steps = []
    kind = cfg.augmentation
    if kind == "crop_flip":
        steps += [PadCropSameSize(), v2.RandomHorizontalFlip()]
    elif kind == "rrc":
        i = spec.input
        steps += [v2.RandomResizedCrop((i.height, i.width), scale=(cfg.rrc_scale, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    if cfg.randaugment:
        steps.append(v2.RandAugment(magnitude=int(cfg.randaugment)))
    if cfg.random_erasing:
        steps.append(v2.RandomErasing(p=cfg.random_erasing, value=0))
    return v2.Compose(steps) if steps else None


class TrainSet(torch.utils.data.Dataset):
    def __init__(self, ds: ArrayDataset, spec: ModelSpec, aug=None):
        self.ds, self.spec, self.aug = ds, spec, aug

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        img = self.ds.image(i)  # uint8 HxWxC, RGB (or HxWx1)
        if self.aug is not None:
            t = self.aug(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1))
            img = t.permute(1, 2, 0).numpy()
        if img.shape[2] == 1:
            img = img[..., 0]
        x = _pre.fast(np.ascontiguousarray(img), "RGB", self.spec)[0]
        y = self.ds.labels[i]
        return torch.from_numpy(x), (torch.from_numpy(y.astype(np.float32)) if y.ndim else int(y))  # multi-label: multi-hot
