"""Training-time augmentation, then the SAME preprocessing code the Predictor runs (preprocess.fast).

Augmentation happens at the image's native resolution (torchvision transforms v2 on uint8 tensors); the result is
then resized/normalized by `preprocess.fast`, so training, validation and deployment share one input pipeline.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import preprocess as _pre
from ..spec import ModelSpec
from .config import TrainConfig
from .data import ArrayDataset


def augmenter(cfg: TrainConfig, spec: ModelSpec, sample_hw: tuple[int, int]):
    from torchvision.transforms import v2

    steps = []
    h, w = sample_hw
    if cfg.augment == "crop_flip":
        steps += [v2.RandomCrop((h, w), padding=max(1, round(min(h, w) / 14)), padding_mode="reflect"), v2.RandomHorizontalFlip()]
    elif cfg.augment == "rrc":
        i = spec.input
        steps += [v2.RandomResizedCrop((i.height, i.width), scale=(0.25, 1.0), antialias=True), v2.RandomHorizontalFlip()]
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
        return torch.from_numpy(x), int(self.ds.labels[i])
