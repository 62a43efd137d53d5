"""The recipe deploy chooses from the data, and the linear-probe head initialization it relies on (real photos)."""

from __future__ import annotations

import shutil

import pytest
import torch

import edgecls
from edgecls.deployment.recipe import DataFacts, choose_recipe
from edgecls.train import TrainConfig, load_image_folder
from edgecls.train.head import fit_head, pooled_features

PHOTOS = DataFacts(n_train=245, n_classes=2, median_side=375, imbalance=1.02, pretrained=True)


def test_small_photo_set_gets_the_gentle_fine_tune_and_says_why():
    s, name, why = choose_recipe(PHOTOS, "efficientnet_lite0")
    assert name == "small photo set, pretrained"
    assert s["pretrained"] and s["backbone_lr_mult"] < 1 and s["weight_decay"] <= 1e-4 and s["augment"] == "rrc"
    assert s["head_init"] == "linear_probe"
    assert s["ema"] is False and any("no weight EMA" in w for w in why)  # a few dozen steps: no EMA
    assert "245 training images" in why[0]
    TrainConfig.from_dict(s)  # a valid recipe


def test_modifiers_imbalance_small_pictures_and_long_runs():
    s, _, why = choose_recipe(DataFacts(20000, 10, 32, 6.0, True), "efficientnet_lite0")
    assert s["balance"] == "loss" and any("imbalanced (6.0:1" in w for w in why)
    assert s["augment"] == "crop_flip" and any("pictures are small" in w for w in why)
    assert s["ema"] is True and 0.99 < s["ema_decay"] < 1  # hundreds of steps: EMA over the last ~10% of them
    scratch, name, _ = choose_recipe(DataFacts(300, 3, 200, 1.0, pretrained=False), "mobilenetv3_small_100")
    assert name == "no pretrained weights" and scratch["pretrained"] is False and scratch["epochs"] >= 30


def test_given_recipe_replaces_the_table_and_overrides_win():
    s, name, why = choose_recipe(PHOTOS, "efficientnet_lite0", given={"epochs": 7, "lr": 5e-4}, overrides={"epochs": 2})
    assert name == "given" and s == {"epochs": 2, "lr": 5e-4, "arch": "efficientnet_lite0"}
    assert why[-1] == "set by you: epochs=2"
    assert choose_recipe(DataFacts(10, 2, 300, 1.0, True), "efficientnet_lite0")[0]["batch_size"] == 10  # capped
    with pytest.raises(ValueError, match="unknown training setting"):
        choose_recipe(PHOTOS, "efficientnet_lite0", overrides={"epochz": 2})


@pytest.mark.slow
def test_linear_probe_head_classifies_its_training_photos(hymenoptera, tmp_path):
    """The fitted head is copied into the model: the model itself then predicts what the fitted probe predicts."""
    for cls in ("ants", "bees"):
        (tmp_path / cls).mkdir()
        for p in sorted((hymenoptera / "train" / cls).glob("*.jpg"))[:12]:
            shutil.copy(p, tmp_path / cls / p.name)
    ds = load_image_folder(tmp_path)
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True, labels=ds.classes)
    before = model.get_classifier().weight.detach().clone()
    r = fit_head(model, ds, spec)
    assert r["images"] == 24 and r["train_top1"] >= 0.95
    assert not torch.equal(before, model.get_classifier().weight)
    model.eval()
    with torch.no_grad():
        logits = model.get_classifier()(torch.from_numpy(pooled_features(model, ds, spec)))
    assert float((logits.argmax(1).numpy() == ds.labels).mean()) == pytest.approx(r["train_top1"])
