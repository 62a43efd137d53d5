"""Choosing a training recipe from the data: a small table, read top to bottom, unless the user gives one.

`choose_recipe(facts, arch)` picks the first row whose condition holds for the data (number of training images,
picture size, whether ImageNet weights are at hand), then applies the modifiers (class imbalance, small pictures,
EMA sized to the run's steps). Each row and modifier says why, and the report prints those reasons. A recipe given
by the user (a TrainConfig YAML or a dict) replaces the table; settings given on the command line (--epochs ...)
override either. To add a recipe (say one researched for CIFAR-sized pictures), add a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..train.config import TrainConfig


@dataclass(frozen=True)
class DataFacts:
    n_train: int
    n_classes: int
    median_side: float  # shorter side of the median picture, pixels
    imbalance: float  # largest / smallest class count in training
    pretrained: bool  # ImageNet weights are available offline for the arch
    multilabel: bool = False  # a labels manifest: several labels per image

    @classmethod
    def from_summary(cls, summary: dict, pretrained: bool) -> DataFacts:
        return cls(summary["n_train"], len(summary["classes"]), summary["shorter_side"]["median"], summary["imbalance"],
                   pretrained, summary.get("task") == "multilabel")


@dataclass(frozen=True)
class Recipe:
    name: str
    when: Callable[[DataFacts], bool]
    settings: dict
    why: str


# Fine-tuning ImageNet features gently. Measured on hymenoptera (pretrained EfficientNet-Lite0, 245 training and 153
# validation photos; one image is 0.65 points, so differences of 1-2 images are noise):
#   the defaults (lr 1e-3 on every layer, wd 0.05, EMA 0.999): 96.1% at epoch 1, falling to 86.9% at epoch 6
#   lr 1e-3 on every layer, wd 1e-4, BatchNorm training, 3 epochs: 94.8 -> 92.8 -> 90.8% (still falls)
#   head 1e-3 / backbone 1e-4 or 3e-4, ImageNet BatchNorm statistics kept: 92-94% over 3-5 epochs, no fall
#   a classifier fitted on frozen features (LP, head_init=linear_probe): 95.4% (146/153)
#   LP then fine-tuning (lr 3e-4 / backbone 1e-4, label smoothing 0.1): 89.5 -> 94.1 -> 94.8 -> 94.1%
#   LP then gentle fine-tuning (lr 1e-4 / backbone 1e-5, crops of >= 70% of the picture, no label smoothing):
#   95.4 -> 94.1 -> 95.4%
# So on a few hundred photos the probe is the model to beat: it is kept as epoch 0 and a short, gentle fine-tune
# replaces it only if it scores higher on validation (bench: benchmarks/deploy_hymenoptera.py).
GENTLE = {"pretrained": True, "head_init": "linear_probe", "optimizer": "adamw", "lr": 1e-4, "backbone_lr_mult": 0.1,
          "weight_decay": 1e-4, "freeze_bn": True, "label_smoothing": 0.0, "augment": "rrc", "rrc_scale": 0.7,
          "warmup_epochs": 0.5, "min_lr": 1e-6, "grad_clip": 2.0}

RECIPES: list[Recipe] = [
    Recipe("small photo set, pretrained", lambda f: f.pretrained and f.n_train < 2_000,
           {**GENTLE, "epochs": 3, "batch_size": 32, "early_stop": 2},
           "few images: fit the classifier on frozen ImageNet features first and keep that model unless a short, gentle "
           "fine-tune (lr 1e-4, backbone x0.1, wd 1e-4, ImageNet BatchNorm statistics kept) beats it on validation"),
    Recipe("medium set, pretrained", lambda f: f.pretrained and f.n_train < 20_000,
           {**GENTLE, "epochs": 10, "batch_size": 64, "lr": 1e-3, "backbone_lr_mult": 0.3, "freeze_bn": False,
            "rrc_scale": 0.35, "label_smoothing": 0.1, "early_stop": 4},
           "thousands of images: a higher lr, and BatchNorm statistics adapt to the data"),
    Recipe("large set, pretrained", lambda f: f.pretrained,
           {**GENTLE, "head_init": "random", "epochs": 15, "batch_size": 128, "lr": 2e-3, "backbone_lr_mult": 1.0,
            "weight_decay": 0.02, "freeze_bn": False, "rrc_scale": 0.25, "label_smoothing": 0.1, "randaugment": 9},
           "tens of thousands of images: full fine-tune with RandAugment"),
    Recipe("no pretrained weights", lambda f: True,
           {"pretrained": False, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05, "epochs": 60, "batch_size": 64,
            "augment": "rrc", "rrc_scale": 0.25, "warmup_epochs": 3.0, "label_smoothing": 0.1, "early_stop": 10},
           "no ImageNet weights for this architecture here: training from scratch needs many more epochs"),
]


def _modifiers(f: DataFacts, s: dict, size: int) -> list[str]:
    why = []
    if f.imbalance >= 3.0:
        s["balance"] = "loss"
        why.append(f"classes are imbalanced ({f.imbalance:.1f}:1 largest to smallest): inverse-frequency class weights")
    if f.median_side < size / 2 and s.get("augment") == "rrc":
        s["augment"] = "crop_flip"
        why.append(f"pictures are small (median shorter side {f.median_side:.0f} px, input {size} px): shift-and-flip "
                   "at native size instead of random resized crops, which would blow up a few pixels")
    steps = s["epochs"] * max(1, f.n_train // s["batch_size"])
    if steps < 1000:
        s["ema"] = False
        why.append(f"{steps} optimizer steps in all: no weight EMA (over so few steps it averages toward the start)")
    else:
        s["ema"], s["ema_decay"] = True, round(1 - 1 / max(100.0, 0.1 * steps), 6)
        why.append(f"{steps} optimizer steps: weight EMA over the last ~10% of them (decay {s['ema_decay']})")
    return why


def _multilabel(f: DataFacts, s: dict) -> list[str]:
    """The table's row turned multi-label: sigmoid outputs and BCE; what only fits one class per image goes."""
    why = ["several labels per image: sigmoid outputs, binary cross-entropy per label, per-label thresholds fitted "
           "for max F1 on validation"]
    s["task"] = "multilabel"
    if s.get("head_init") == "linear_probe":
        s["head_init"], s["lr"] = "random", max(s.get("lr", 1e-3), 1e-3)
        why.append("the linear probe fits a softmax classifier: a random head instead, trained at lr >= 1e-3")
    if s.get("balance", "none") != "none":
        s["balance"], s["multilabel_loss"] = "none", "asymmetric"
        why.append(f"labels are imbalanced ({f.imbalance:.1f}:1 most to least frequent): the asymmetric loss instead of "
                   "class weights (which weigh single classes)")
    for k in ("mixup", "cutmix"):
        if s.get(k):
            s[k] = 0.0
            why.append(f"{k} off: it mixes one class per image")
    s["label_smoothing"] = 0.0
    return why


def choose_recipe(facts: DataFacts, arch: str, *, given: dict | None = None, overrides: dict | None = None,
                  input_size: int = 224) -> tuple[dict, str, list[str]]:
    """-> (TrainConfig settings, recipe name, reasons). `given` replaces the table; `overrides` win over both."""
    if given is not None:
        settings, name, why = dict(given), "given", ["the recipe you gave"]
    else:
        row = next(r for r in RECIPES if r.when(facts))
        settings, name = dict(row.settings), row.name
        why = [f"{facts.n_train} training images, {facts.n_classes} classes, median shorter side "
               f"{facts.median_side:.0f} px{', ImageNet weights available' if facts.pretrained else ''}: {row.why}"]
        why += _modifiers(facts, settings, input_size)
        if facts.multilabel:
            why += _multilabel(facts, settings)
    if facts.multilabel and given is not None:
        settings.setdefault("task", "multilabel")
    settings["arch"] = arch
    if overrides:
        settings.update(overrides)
        why.append("set by you: " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    if facts.n_train < settings.get("batch_size", 128):
        settings["batch_size"] = max(1, facts.n_train)
    # an unknown or bad setting fails here, with its name (a multi-label check needs some folder, not Fashion-MNIST)
    TrainConfig.from_dict({**({"data": "data"} if settings.get("task") == "multilabel" else {}), **settings})
    return settings, name, why


__all__ = ["DataFacts", "GENTLE", "RECIPES", "Recipe", "choose_recipe"]
