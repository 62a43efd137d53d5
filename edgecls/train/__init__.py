"""Training: `edgecls.train.train(TrainConfig(...))` or `edgecls train --config recipe.yaml`."""

from .config import TrainConfig
from .data import ArrayDataset, DataError, load_fashion_mnist, load_image_folder, stratified_split
from .evaluate import classification_metrics, fit_temperature
from .loop import TrainResult, predict_logits, train

__all__ = [
    "ArrayDataset", "DataError", "TrainConfig", "TrainResult", "classification_metrics", "fit_temperature",
    "load_fashion_mnist", "load_image_folder", "predict_logits", "stratified_split", "train",
]
