"""Cached activations on disk (edgecls/train/featstore.py): written in order, resumed after a kill, never reused for
other images or weights; on real CIFAR-10 JPEGs through the real frozen prefix (OpenVINO)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgecls
from edgecls.train import load_image_folder
from edgecls.train.cached import cache_features, freeze, prefix_key, split_model
from edgecls.train.featstore import FeatureStore, dataset_key

SIZE = 64


@pytest.fixture(scope="module")
def prefix(cifar10_small):
    _, val_dir = cifar10_small
    val = load_image_folder(val_dir)
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True, labels=val.classes, input_size=SIZE)
    split = split_model(model, spec, 5)
    freeze(split)
    return split, spec, val


@pytest.mark.slow
def test_store_on_disk_equals_the_one_in_memory(prefix, tmp_path):
    split, spec, val = prefix
    mem, info = cache_features(split, val, spec, mirror=True, threads=2)
    disk, dinfo = cache_features(split, val, spec, mirror=True, threads=2, store=tmp_path / "s")
    assert isinstance(disk, np.memmap) and dinfo["on_disk"] and not info["on_disk"]
    np.testing.assert_array_equal(np.asarray(disk), mem)
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert meta["done"] == len(val) and meta["shape"] == [len(val), 2, *mem.shape[2:]]

    again, ainfo = cache_features(split, val, spec, mirror=True, threads=2, store=tmp_path / "s")
    assert ainfo["runtime"] == "reused" and ainfo["resumed_at"] == len(val)
    np.testing.assert_array_equal(np.asarray(again), mem)


def test_a_killed_cache_resumes_where_it_was_committed(prefix, tmp_path):
    split, spec, val = prefix
    full, _ = cache_features(split, val, spec, mirror=False, threads=2, batch=8, runtime="torch")
    key = prefix_key(split, spec, val, 1)
    # what a kill after 3 committed batches leaves: the first 24 rows and done=24, garbage after them
    fs = FeatureStore.open(tmp_path / "k", key, len(val), 1, full.shape[2:])
    fs.write(0, full[:24])
    fs.commit(24)
    fs.write(24, np.full_like(full[24:32], 7))  # written but never committed
    resumed, info = cache_features(split, val, spec, mirror=False, threads=2, batch=8, store=tmp_path / "k", runtime="torch")
    assert info["resumed_at"] == 24
    np.testing.assert_array_equal(np.asarray(resumed), full)


def test_other_images_or_weights_do_not_reuse_a_store(prefix, tmp_path):
    split, spec, val = prefix
    cache_features(split, val, spec, mirror=False, threads=2, store=tmp_path / "o", runtime="torch")
    fewer = val.subset(np.arange(len(val) - 1))
    assert dataset_key(fewer) != dataset_key(val)
    _, info = cache_features(split, fewer, spec, mirror=False, threads=2, store=tmp_path / "o", runtime="torch")
    assert info["resumed_at"] == 0 and info["runtime"] != "reused"

    model2, spec2 = edgecls.create_model("efficientnet_lite0", pretrained=False, labels=val.classes, input_size=SIZE)
    other = split_model(model2, spec2, 5)
    assert prefix_key(other, spec2, val, 1) != prefix_key(split, spec, val, 1)
