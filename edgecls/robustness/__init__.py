"""Robustness of shipped artifacts: common corruptions (ImageNet-C style) on every runtime, small adversarial attacks
crafted on the float model and their transfer to its builds, and explanations.

Needs the `robustness` extra (albumentations for the corruptions, grad-cam for the maps)."""

from .adversarial import AdversarialError, attack, check_eps, evaluate_adversarial, model_crops
from .corruptions import CORRUPTIONS, DEFAULT, EXTRA, SEVERITIES, CorruptionError, corrupt, parse_severities
from .evaluate import ImageSet, evaluate_corruptions, image_set_from_arrays, load_image_set, outcomes

__all__ = ["AdversarialError", "attack", "check_eps", "evaluate_adversarial", "model_crops", "CORRUPTIONS", "DEFAULT", "EXTRA", "SEVERITIES", "CorruptionError", "ImageSet", "corrupt",
           "evaluate_corruptions", "image_set_from_arrays", "load_image_set", "outcomes", "parse_severities"]
