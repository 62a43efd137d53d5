"""Training under a time limit, seeds and backbone comparison (train/probe.py, plan.py, runs.py, compare.py).

The time logic is tested with measured, scaled-down budgets: the costs are measured here for real (a few batches of
real CIFAR-10 JPEGs at 64 px), the budgets are built from those measurements, and what is asserted is the decision
(which ladder rung, how many epochs, whether a run stopped with its best epoch), never a wall-clock time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import edgecls
from edgecls.errors import TrainError
from edgecls.train import TrainConfig, load_image_folder, train
from edgecls.train.compare import Candidate, better, choose
from edgecls.train.plan import LADDER, MAX_EPOCHS, MIN_EPOCHS, SAFETY, make_plan, predict, rungs
from edgecls.train.probe import Setting, measure

SIZE = 64


@pytest.fixture(scope="module")
def small(cifar10_small):
    train_dir, val_dir = cifar10_small
    tr = load_image_folder(train_dir)
    return tr, load_image_folder(val_dir, classes=tr.classes)


@pytest.fixture(scope="module")
def costs(small):
    """Every small-set rung's setting at 64 px, measured once for real."""
    tr, _ = small
    settings = {r.setting("efficientnet_lite0", SIZE) for r in LADDER["small"]}
    return {s: measure(s, tr, threads=2, images=24) for s in settings}  # 16 timed images: the fast subset's share


def _plan(small, costs, budget_s, **kw):
    tr, va = small
    return make_plan(tr, va, ["efficientnet_lite0"], budget_s, deadline=time.monotonic() + budget_s, input_size=SIZE,
                     probe=lambda s, ds, threads=None: costs[s], **kw)


def _need(small, costs, rung, epochs=MIN_EPOCHS, seeds=1) -> float:
    """What a plan on `rung` predicts for the whole run, and the budget that holds it (the planner keeps SAFETY)."""
    tr, va = small
    c = costs[rung.setting("efficientnet_lite0", SIZE)]
    return predict([c], rung.views, len(tr), len(va), epochs, seeds)["total"] / SAFETY


def test_probe_measures_every_part_of_a_run(costs):
    full = costs[Setting("efficientnet_lite0", SIZE, 0)]
    cached = costs[Setting("efficientnet_lite0", SIZE, 5)]
    assert full.cache_s == 0 and full.bytes_per_view == 0 and full.step_s > 0  # nothing cached: all layers train
    assert cached.cache_s > 0 and cached.bytes_per_view > 0 and cached.eval_s > 0 and cached.full_s > 0
    assert cached.step_s < full.step_s  # a frozen prefix is cheaper to train than the whole network, here too


def test_plan_takes_the_first_rung_that_fits(small, costs):
    ladder = [r for r, _ in rungs("small", ["efficientnet_lite0"])]  # one backbone: the rank-0 rungs
    assert [r.stages for r in ladder] == [0, 5, 6]
    top = _need(small, costs, ladder[0])
    p = _plan(small, costs, top * 1.05)
    assert p.runs[0].setting == ladder[0].setting("efficientnet_lite0", SIZE) and p.epochs >= MIN_EPOCHS
    assert p.n_train == len(small[0]) and p.predicted["total"] <= top * 1.05

    # a budget the top rung does not fit: the first rung down the ladder that does, with every image; on a set this
    # small a cached rung may cost as much as training everything (compiling the prefix), and then no rung fits and
    # the last one trains on the share of the images that fits
    budget = top * 0.93
    fits = [k for k, r in enumerate(ladder) if _need(small, costs, r) < budget * 0.97]
    if fits:
        p = _plan(small, costs, budget)
        assert p.runs[0].setting == ladder[fits[0]].setting("efficientnet_lite0", SIZE) and p.n_train == len(small[0])
        assert any("needs about" in m for m in p.more_time)  # what the rung above would take
        return
    try:
        p = _plan(small, costs, budget)
    except TrainError as e:  # the cheapest rung's fixed costs (caching, compiling the prefix) exceed even a share's time
        assert "give a longer time_limit" in str(e) and ladder[-1].setting("efficientnet_lite0", SIZE).arch in str(e)
        return
    assert p.runs[0].setting == ladder[-1].setting("efficientnet_lite0", SIZE) and p.n_train < len(small[0])
    assert p.epochs == MIN_EPOCHS


def test_plenty_of_time_buys_epochs_then_seeds(small, costs):
    rung = LADDER["small"][0]
    p = _plan(small, costs, _need(small, costs, rung, MAX_EPOCHS, 3) * 1.01)
    assert p.epochs == MAX_EPOCHS and p.seeds >= 2
    p = _plan(small, costs, _need(small, costs, rung, MAX_EPOCHS, 3) * 1.01, seeds=1)  # the user's seeds win
    assert p.seeds == 1
    p = _plan(small, costs, _need(small, costs, rung, 3, 4) * 1.01, max_epochs=3)  # the config's epochs cap the plan
    assert p.epochs == 3 and p.seeds >= 3


def test_too_little_time_is_a_clear_error(small, costs):
    with pytest.raises(TrainError, match="give a longer time_limit"):
        _plan(small, costs, 2.0)


def test_plan_counts_what_runs_after_training(small, costs):
    rung = LADDER["small"][0]
    budget = _need(small, costs, rung) * 1.05
    assert _plan(small, costs, budget).runs[0].setting.stages == rung.stages
    try:  # half the time goes to deploy's export, INT8 and benchmark: the top rung no longer fits
        later = _plan(small, costs, budget, after_s=lambda settings: budget * 0.5)
    except TrainError as e:  # nor does any cheaper rung, even on a share of the images (their fixed costs, measured)
        assert "leaves" in str(e) and "give a longer time_limit" in str(e)
        return
    assert later.runs[0].setting != rung.setting("efficientnet_lite0", SIZE) and later.predicted["after"] == budget * 0.5


@pytest.mark.slow
def test_a_deadline_stops_the_run_with_its_best_epoch(cifar10_small, tmp_path):
    """A run given a deadline of about two measured epochs stops on it, early, with a model saved and its
    schedule shortened; nothing about how many seconds it took is asserted."""
    from edgecls.train.loop import ModelIO, run_once

    train_dir, val_dir = cifar10_small
    tr, va = load_image_folder(train_dir), load_image_folder(val_dir)
    cfg = TrainConfig(data=str(train_dir), arch="efficientnet_lite0", pretrained=True, input_size=SIZE, freeze_stages=5,
                      cache_features=True, epochs=400, batch_size=32, ema=False, threads=2, out_dir=str(tmp_path / "a"),
                      mistakes=0)
    c = measure(Setting("efficientnet_lite0", SIZE, 5), tr, threads=2)
    epoch = len(tr) * c.step_s + len(va) * c.eval_s
    # the cache's share four times over (it runs once, and a busy machine slows it): more room only adds epochs,
    # still far fewer than 400
    budget = 4 * (c.setup_s + (2 * len(tr) + len(va)) * c.cache_s) + 3 * epoch
    r = run_once(cfg, None, None, None, None, ModelIO(), (tr, va), deadline=time.monotonic() + budget, finish=False)
    m = r.metrics
    assert m["stopped"] and m["stopped"].startswith("time")
    assert 1 <= m["epochs_run"] < 400 and r.best_path.is_file() and r.val_logits is not None
    # the cosine was rescaled to the epochs that fit: a 400-epoch cosine would still be at ~100% of its peak here
    # (unless the deadline came before a second epoch could start, when no epoch after the first was trained)
    assert m["history"][-1]["lr"] < cfg.lr * 0.9 or m["history"][-1]["epoch"] == 1


@pytest.mark.slow
def test_a_lone_run_grows_its_epochs_into_unused_time(cifar10_small, tmp_path):
    """A run planned for 2 epochs, whose deadline leaves room for several more at its measured pace, grows its epochs
    after the first one (up to extend_to) and lengthens its schedule; without extend_to it keeps the plan's 2."""
    from edgecls.train.loop import ModelIO, run_once

    train_dir, val_dir = cifar10_small
    tr, va = load_image_folder(train_dir), load_image_folder(val_dir)
    c = measure(Setting("efficientnet_lite0", SIZE, 5), tr, threads=2)
    epoch = len(tr) * c.step_s + len(va) * c.eval_s
    budget = 4 * (c.setup_s + (2 * len(tr) + len(va)) * c.cache_s) + 8 * epoch  # room for ~8 epochs after the cache

    def run(name, extend_to):
        cfg = TrainConfig(data=str(train_dir), arch="efficientnet_lite0", pretrained=True, input_size=SIZE,
                          freeze_stages=5, cache_features=True, epochs=2, batch_size=32, ema=False, threads=2,
                          out_dir=str(tmp_path / name), cache_dir=str(tmp_path / "cache"), mistakes=0)
        return run_once(cfg, None, None, None, None, ModelIO(), (tr, va), deadline=time.monotonic() + budget,
                        finish=False, extend_to=extend_to).metrics

    kept, grown = run("kept", None), run("grown", 6)
    assert kept["epochs_run"] == 2 and kept["epochs_planned"] == 2
    assert 2 < grown["epochs_run"] <= 6 and grown["epochs_planned"] == 2
    # the cosine was stretched to the grown run: a 2-epoch cosine reaches its floor at the end of epoch 2
    lr_at_2 = [next(h["lr"] for h in m["history"] if h["epoch"] == 2) for m in (grown, kept)]
    assert lr_at_2[0] > lr_at_2[1]


def test_compare_prefers_the_cheaper_backbone_unless_the_gain_is_real():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 600)
    onehot = np.eye(4)[y] * 5

    def logits(acc, shift=0):  # right on acc of the images (a window starting at -shift), wrong (next class) elsewhere
        right = (np.arange(len(y)) + shift) % len(y) < acc * len(y)
        return np.where(right[:, None], onehot, np.roll(onehot, 1, 1))

    cheap = Candidate("lite0", [0.80, 0.81], logits(0.80), cost=1.0)
    # 1 point better on average but right and wrong on other images: 60 vs 54 discordant pairs, McNemar p ~ 0.6
    slight = Candidate("lite1", [0.81, 0.815], logits(0.81, shift=60), cost=2.0)
    large = Candidate("lite2", [0.90, 0.89], logits(0.90), cost=3.0)
    pick, rows, why = choose([large, slight, cheap], y)
    assert pick is large and len(rows) == 3
    assert better(large, cheap, y)[0] and not better(slight, cheap, y)[0]
    assert "not a real gain" in " ".join(why)
    # a gain that does not hold across seeds is not real either
    flaky = Candidate("lite2", [0.90, 0.79], logits(0.90), cost=3.0)
    assert not better(flaky, cheap, y)[0] and "better in 1 of 2 seeds" in better(flaky, cheap, y)[1]
    # over the latency budget: shown, never picked
    large.eligible, large.note = False, "INT8 9 ms over the 5 ms budget"
    pick, rows, _ = choose([large, slight, cheap], y)
    assert pick is cheap and [r["picked"] for r in rows] == [True, False, False]
    assert rows[0]["interval"][0] < 0.80 < rows[0]["interval"][1] and rows[0]["n"] == 600


@pytest.mark.slow
def test_seeds_share_the_cache_and_the_best_one_is_kept(cifar10_small, tmp_path):
    train_dir, val_dir = cifar10_small
    cfg = TrainConfig(data=str(train_dir), val_dir=str(val_dir), arch="efficientnet_lite0", pretrained=True,
                      input_size=SIZE, freeze_stages=6, cache_features=True, epochs=2, batch_size=32, ema=False,
                      threads=2, seeds=2, out_dir=str(tmp_path), mistakes=0)
    r = train(cfg)
    seeds = r.metrics["seeds"]["efficientnet_lite0-64px"]
    assert [s["seed"] for s in seeds] == [0, 1]
    best = max(s["val"] for s in seeds)
    assert r.metrics["summary"]["val_top1"] == pytest.approx(best, abs=1.5 / 60)  # whole model vs cached tail
    assert r.metrics["seed_spread"]["efficientnet_lite0-64px"]["n"] == 2
    caches = list((tmp_path / "feature_cache").iterdir())
    assert len(caches) == 2  # one training and one validation store, shared by both seeds
    assert r.metrics["feature_cache"]["train"]["resumed_at"] in (0, len(load_image_folder(train_dir)))
    with edgecls.Predictor(r.best_path) as pred:  # an ordinary model file
        va = load_image_folder(val_dir)
        top1 = np.mean([pred.predict(va.pixels(i), color="RGB").index == va.labels[i] for i in range(len(va))])
    assert top1 == pytest.approx(r.metrics["summary"]["val_top1"])
