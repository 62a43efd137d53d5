"""TrainConfig: every training setting in one visible object, from YAML or CLI flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..configfile import known_fields, read_yaml_mapping


@dataclass
class TrainConfig:
    # what to train on
    data: str = "fashion-mnist"  # "fashion-mnist" or an ImageFolder path (root/<class>/<images>)
    data_root: str | None = None  # Fashion-MNIST IDX folder (default: Debian's dataset-fashion-mnist)
    val_dir: str | None = None  # ImageFolder validation tree; else a stratified split of `data`
    val_fraction: float = 0.1
    limit_train: int | None = None  # first N (stratified) training images: tiny runs for tests
    limit_val: int | None = None
    eval_test: bool = True  # Fashion-MNIST: evaluate the best model on the 10k test set at the end
    # the model
    arch: str = "mobilenetv3_small_100"
    pretrained: bool = False
    mode: str = "full"  # "full" fine-tune, or "linear_probe": freeze the backbone, train the head
    # partial fine-tuning (edgecls/train/cached.py)
    freeze_stages: int = field(default=0, metadata={"help": (
        "N >= 1: keep the stem and the first N stages (model.blocks[:N]: 7 in EfficientNet-Lite and MobileNetV3-Large, 6 in -Small) "
        "frozen, BatchNorm statistics included, and train the rest; 0: train every layer")})
    cache_features: bool = field(default=False, metadata={"help": (
        "with freeze_stages: run the frozen layers once per image (and once per mirror image unless augment is "
        "none), keep their output in RAM as float16 and train the rest on it; no other augmentation applies")})
    input_size: int | None = None  # default: 64 for Fashion-MNIST, the arch's own for image folders
    in_chans: int | None = None  # default: 1 for Fashion-MNIST, 3 otherwise
    drop_rate: float = 0.0
    # optimisation
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 2e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    grad_clip: float | None = 2.0
    freeze_bn: bool = False  # keep BatchNorm statistics as they are (fine-tuning a converged or fake-quantized model)
    label_smoothing: float = 0.1
    balance: str = "none"  # none | loss | sampler: class-imbalance handling
    # augmentation
    augment: str = "crop_flip"  # none | crop_flip (small images) | rrc (RandomResizedCrop + flip)
    randaugment: int = 0  # RandAugment magnitude; 0 = off
    random_erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    # knowledge distillation: loss = (1 - kd_alpha) * CE + kd_alpha * T^2 * KL(student/T || teacher/T)
    teacher: str | None = None  # an edgecls .pt whose preprocessing matches the student's
    kd_alpha: float = 0.7
    kd_temperature: float = 4.0
    # averaging, stopping, reproducibility, output
    ema: bool = True
    ema_decay: float = 0.999
    early_stop: int | None = None  # stop after this many epochs without a better val top-1
    seed: int = 0
    threads: int | None = None
    workers: int = 0
    out_dir: str = "runs/train"
    resume: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.optimizer in ("adamw", "sgd"), f"optimizer={self.optimizer!r}: use 'adamw' or 'sgd'"),
            (self.mode in ("full", "linear_probe"), f"mode={self.mode!r}: use 'full' or 'linear_probe'"),
            (self.balance in ("none", "loss", "sampler"), f"balance={self.balance!r}: use none, loss or sampler"),
            (self.augment in ("none", "crop_flip", "rrc"), f"augment={self.augment!r}: use none, crop_flip or rrc"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.lr > 0 and self.min_lr >= 0, "lr must be > 0 and min_lr >= 0"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 < self.ema_decay < 1, "ema_decay must be in (0, 1)"),
            (self.in_chans in (None, 1, 3), "in_chans must be 1 or 3"),
            (0 <= self.kd_alpha <= 1 and self.kd_temperature > 0, "kd_alpha must be in [0, 1] and kd_temperature > 0"),
            (self.freeze_stages >= 0, "freeze_stages must be >= 0 (0 = train every layer)"),
            (not (self.freeze_stages and self.mode == "linear_probe"), "freeze_stages and mode=linear_probe both choose what trains; use one"),
            (not self.cache_features or self.freeze_stages > 0, "cache_features needs freeze_stages >= 1 (the layers whose output is cached)"),
            (not self.cache_features or not (self.randaugment or self.random_erasing or self.mixup or self.cutmix or self.teacher),
             "cache_features stores each image's activations once (plus its mirror): randaugment, random_erasing, mixup, "
             "cutmix and teacher need the images at every step; set them off or cache_features: false"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"bad training config: {msg}")

    @property
    def is_fashion_mnist(self) -> bool:
        return self.data.lower() in ("fashion-mnist", "fashion_mnist", "fashionmnist")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known_fields(cls, d, ValueError, "training")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml_mapping(path, ValueError, "training"))
