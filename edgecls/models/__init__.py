from .pretrained import imagenet_labels
from .registry import ARCHS, create_model, get_arch, list_archs

__all__ = ["ARCHS", "create_model", "get_arch", "imagenet_labels", "list_archs"]
