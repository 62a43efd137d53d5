"""Metrics and calibration against values computed by hand."""

import numpy as np
import pytest

from edgecls.data.datasets import class_weights
from edgecls.train.evaluate import calibration, classification_metrics, fit_temperature, softmax


def test_metrics_by_hand():
    # 3 classes, 6 samples. predictions (argmax): [0, 0, 1, 1, 2, 0]; truth: [0, 0, 1, 2, 2, 1]
    logits = np.array([[5, 0, 0], [4, 1, 0], [0, 3, 1], [0, 2, 1], [0, 0, 3], [2, 1, 0]], dtype=np.float64)
    y = np.array([0, 0, 1, 2, 2, 1])
    m = classification_metrics(logits, y, ("a", "b", "c"))
    assert m["top1"] == pytest.approx(4 / 6)
    # confusion rows = truth: a->[2,0,0], b->[1,1,0], c->[0,1,1]
    assert m["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 1, 1]]
    # recall a=1, b=1/2, c=1/2 -> balanced accuracy 2/3; precision a=2/3, b=1/2, c=1
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["c"]["precision"] == pytest.approx(1.0)
    # f1 a = 2*(2/3*1)/(2/3+1) = 0.8 ; b = 0.5 ; c = 2*(1*0.5)/1.5 = 2/3
    assert m["per_class"]["a"]["f1"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # top-5 with 3 classes is always right
    assert m["top5"] == 1.0


def test_ece_by_hand():
    # two samples in the 0.9 bin (one right: acc 0.5, conf 0.9), two in the 0.6 bin (both right: acc 1, conf 0.6)
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    # ECE = 0.5*|0.5-0.9| + 0.5*|1.0-0.6| = 0.2 + 0.2
    assert calibration(probs, y, bins=10)["ece"] == pytest.approx(0.4)


def test_temperature_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 5)) * 2
    p = softmax(true_logits)
    y = np.array([rng.choice(5, p=row) for row in p])  # labels drawn from the calibrated model
    t = fit_temperature(true_logits * 3.0, y)  # an overconfident copy: T should come back near 3
    assert t == pytest.approx(3.0, rel=0.1)
    before = calibration(softmax(true_logits * 3.0), y)["ece"]
    after = calibration(softmax(true_logits * 3.0, t), y)["ece"]
    assert after < before


def test_class_weights_by_hand():
    # counts 3, 1 -> inverse frequency 4/3/2=0.667, 4/1/2=2 -> normalized to mean 1: 0.5, 1.5
    assert class_weights(np.array([0, 0, 0, 1]), 2) == pytest.approx([0.5, 1.5])
