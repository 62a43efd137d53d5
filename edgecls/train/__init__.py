"""Training: `edgecls.train.train(TrainConfig(...))` or `edgecls train --config recipe.yaml`.

The data readers and metrics are numpy-only (usable on a device); the loop needs PyTorch and loads lazily.
"""

from ..data.datasets import ArrayDataset, DataError, load_fashion_mnist, stratified_split
from ..data.scan import load_image_folder
from .config import TrainConfig
from .evaluate import classification_metrics

__all__ = [
    "ArrayDataset", "DataError", "TrainConfig", "TrainResult", "classification_metrics", "fit_temperature",
    "load_fashion_mnist", "load_image_folder", "predict_logits", "stratified_split", "train",
]


def __getattr__(name: str):
    if name == "train":  # planned runs (time_limit, seeds, arch auto) or one run of the loop
        from .runs import train

        return train
    if name in ("TrainResult", "predict_logits"):
        from . import loop

        return getattr(loop, name)
    if name == "fit_temperature":
        from .evaluate import fit_temperature

        return fit_temperature
    raise AttributeError(name)
