"""Partial fine-tuning on cached activations (edgecls/train/cached.py), on real CIFAR-10 JPEGs.

What must hold: the cached activations are what the deployed network computes from the Predictor's own
preprocessing of each image (and of its mirror image), so a model trained on them behaves the same on the device;
the frozen layers do not change, BatchNorm statistics included; the result is an ordinary edgecls model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgecls
from edgecls.runtime import preprocess as pre
from edgecls.train import TrainConfig, load_image_folder, predict_logits, train
from edgecls.train.cached import cache_features, freeze, split_model, tail_logits

SIZE = 128  # a smaller input than Lite0's 224 keeps the tests fast; the split does not depend on it


@pytest.fixture(scope="module")
def lite0_cifar(cifar10_small):
    train_dir, val_dir = cifar10_small
    val = load_image_folder(val_dir)
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True, labels=val.classes, input_size=SIZE)
    return model, spec, val


@pytest.mark.slow
@pytest.mark.parametrize("stages", [5, 7])  # the recipe's split, and the last one (only conv_head + classifier train)
def test_cached_activations_give_the_full_models_logits(lite0_cifar, stages):
    model, spec, val = lite0_cifar
    split = split_model(model, spec, stages)
    freeze(split)
    feats, info = cache_features(split, val, spec, mirror=True, threads=2)
    assert feats.dtype == np.float16 and feats.shape[:2] == (len(val), 2)
    assert info["images"] == len(val) and info["views"] == 2

    whole = predict_logits(model, val, spec)  # the full network on preprocess.fast, as the Predictor runs it
    cached = tail_logits(model, spec, stages, feats)
    scale = np.abs(whole).max()
    assert np.abs(cached - whole).max() < 2e-3 * scale  # float16 storage is the only difference
    assert (cached.argmax(1) == whole.argmax(1)).all()

    # view 1 is the mirror image, flipped before preprocessing (as the image augmentation does)
    mirrored = np.concatenate([pre.fast(np.ascontiguousarray(val.pixels(i)[:, ::-1]), "RGB", spec) for i in range(len(val))])
    with torch.inference_mode():
        want = model.eval()(torch.from_numpy(mirrored)).numpy()
    got = tail_logits(model, spec, stages, np.ascontiguousarray(feats[:, 1:]))
    assert np.abs(got - want).max() < 2e-3 * scale
    assert np.abs(got - whole).max() > 10 * np.abs(got - want).max()  # and it is not just the unflipped image again


def test_split_rejects_stage_counts_the_model_does_not_have(lite0_cifar):
    model, spec, _ = lite0_cifar
    with pytest.raises(ValueError, match="has 7 stages"):
        split_model(model, spec, 8)


@pytest.mark.slow
def test_training_on_cached_activations(cifar10_small, tmp_path):
    train_dir, val_dir = cifar10_small
    cfg = TrainConfig(data=str(train_dir), val_dir=str(val_dir), arch="efficientnet_lite0", pretrained=True,
                      input_size=SIZE, freeze_stages=5, cache_features=True, epochs=2, batch_size=32, lr=1e-3,
                      warmup_epochs=0.5, ema=False, threads=2, out_dir=str(tmp_path))
    start, _ = edgecls.create_model("efficientnet_lite0", pretrained=True, labels=("airplane", "automobile", "cat", "ship"),
                                    input_size=SIZE)
    r = train(cfg)
    before, after = start.state_dict(), r.model.state_dict()
    frozen = [k for k in before if k.startswith(("conv_stem.", "bn1.", *(f"blocks.{i}." for i in range(5))))]
    trained = [k for k in before if k.startswith(("blocks.5.", "blocks.6.", "conv_head.", "bn2."))]
    assert frozen and trained
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # weights and BatchNorm running statistics
    assert any(not torch.equal(before[k], after[k]) for k in trained)

    # each epoch's val top-1 came from cached activations; the final one from the whole model on the images
    h = r.metrics["history"][r.metrics["summary"]["best_epoch"] - 1]
    assert h["val_top1"] == pytest.approx(r.metrics["summary"]["val_top1"])
    assert r.metrics["summary"]["val_top1"] >= 0.7  # 4 classes, chance is 0.25
    cache = r.metrics["feature_cache"]
    assert cache["train"]["views"] == 2 and cache["train"]["images"] == 160 and cache["val"]["views"] == 1

    # an ordinary edgecls model: the Predictor on the image files agrees with the trainer's figure
    val = load_image_folder(val_dir)
    with edgecls.Predictor(r.best_path) as pred:
        top1 = np.mean([pred.predict(val.pixels(i), color="RGB").index == val.labels[i] for i in range(len(val))])
    assert top1 == pytest.approx(r.metrics["summary"]["val_top1"])


@pytest.mark.slow
def test_frozen_stages_without_cache_keep_batchnorm_statistics(cifar10_small, tmp_path):
    train_dir, val_dir = cifar10_small
    cfg = TrainConfig(data=str(train_dir), val_dir=str(val_dir), arch="efficientnet_lite0", pretrained=True,
                      input_size=SIZE, freeze_stages=6, augment="none", epochs=1, batch_size=32, ema=False, threads=2,
                      out_dir=str(tmp_path))
    start, _ = edgecls.create_model("efficientnet_lite0", pretrained=True, labels=("airplane", "automobile", "cat", "ship"),
                                    input_size=SIZE)
    r = train(cfg)
    before, after = start.state_dict(), r.model.state_dict()
    stats = [k for k in before if k.startswith("blocks.5.") and k.endswith("running_mean")]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)  # a prefix left in train mode moves these
    assert not torch.equal(before["blocks.6.0.bn1.running_mean"], after["blocks.6.0.bn1.running_mean"])


@pytest.mark.parametrize("bad, match", [
    (dict(cache_features=True), "needs freeze_stages"),
    (dict(freeze_stages=5, cache_features=True, randaugment=9), "randaugment"),
    (dict(freeze_stages=5, cache_features=True, mixup=0.2), "mixup"),
    (dict(freeze_stages=3, mode="linear_probe"), "linear_probe"),
    (dict(freeze_stages=-1), "freeze_stages must be"),
])
def test_bad_partial_fine_tuning_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)
