"""edgecls.stats against independent references (SciPy's exact binomial test and Wilson interval) and against what
an interval promises (Monte Carlo coverage), plus the budget decisions compress and deploy make with it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import binomtest

from edgecls import stats


@pytest.mark.parametrize("k,n", [(147, 153), (0, 10), (10, 10), (5, 20), (1, 1), (500, 1000), (3, 7)])
def test_wilson_matches_scipy(k, n):
    w = stats.wilson(k, n)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (w.lo, w.hi) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert w.lo <= w.value <= w.hi and w.k == k and w.n == n


def test_wilson_text_names_k_and_n():
    assert stats.wilson(147, 153).pct() == "96.1% [91.7, 98.2] (147/153)"
    with pytest.raises(ValueError):
        stats.wilson(5, 0)


@pytest.mark.parametrize("b,c", [(3, 1), (0, 5), (10, 2), (40, 60), (0, 0), (7, 7), (1, 30), (120, 90)])
def test_exact_mcnemar_is_the_two_sided_binomial_test_of_the_discordant_pairs(b, c):
    want = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert stats.mcnemar_exact(b, c) == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_paired_counts_and_difference():
    ref = np.array([1, 1, 1, 0, 0, 1, 1, 0], bool)
    oth = np.array([1, 0, 1, 1, 0, 1, 0, 0], bool)
    p = stats.paired(ref, oth)
    assert (p.both, p.ref_only, p.other_only, p.neither, p.n) == (3, 2, 1, 2, 8)
    assert p.difference == pytest.approx((1 - 2) / 8)
    assert p.lo <= p.difference <= p.hi
    with pytest.raises(ValueError):
        stats.paired(ref, oth[:-1])


def test_newcombe_paired_interval_covers_the_truth_95_percent_of_the_time():
    """Simulated validation sets of n images judged by two correlated models: the 95% interval of the accuracy
    difference must cover the true difference about 95% of the time (Newcombe reports ~0.95 for method 10)."""
    rng = np.random.default_rng(0)
    n, trials, covered = 150, 2000, 0
    # cells: both right, ref only, other only, both wrong (an FP32 model and a slightly worse INT8 one)
    probs = np.array([0.9, 0.04, 0.02, 0.04])
    truth = probs[2] - probs[1]
    for _ in range(trials):
        a, b, c, d = rng.multinomial(n, probs)
        lo, hi = stats.newcombe_paired(a, b, c, d)
        covered += lo <= truth <= hi
    assert 0.93 <= covered / trials <= 0.985, covered / trials


def test_newcombe_interval_is_not_degenerate_without_discordant_pairs():
    """No image changed: the Wald interval would be [0, 0]; 150 images cannot exclude a drop of about 2 points."""
    lo, hi = stats.newcombe_paired(140, 0, 0, 10)
    assert lo < -0.01 and hi > 0.01


def test_budget_says_when_the_validation_set_cannot_resolve_it():
    ref = np.ones(153, bool)
    ref[:6] = False
    other = ref.copy()
    other[10] = False  # one image lost: 0.65 points on 153 images
    d = stats.budget(ref, other, 0.5)
    assert d.drop_pts == pytest.approx(100 / 153)
    assert not d.within and not d.resolved
    assert "one image is 0.65 pts" in d.note and "cannot resolve a 0.5-point budget" in d.note
    assert "not significant" in d.note
    # within a generous budget, and resolved: the interval of the drop stays below 5 points
    ok = stats.budget(ref, other, 5.0)
    assert ok.within and ok.resolved
    # a real, large drop: over budget, resolved, significant
    bad = ref.copy()
    bad[20:60] = False
    big = stats.budget(ref, bad, 1.0)
    assert not big.within and big.resolved and big.comparison.significant


def _correct(n: int, lost: int, gained: int = 0) -> tuple[np.ndarray, np.ndarray]:
    ref = np.ones(n, bool)
    ref[:gained] = False
    other = ref.copy()
    other[:gained] = True
    other[gained:gained + lost] = False
    return ref, other


@pytest.mark.parametrize("n,lost,gained,max_drop", [(100, 1, 0, 1.5), (200, 3, 1, 1.0), (1000, 4, 0, 0.5),
                                                    (16, 1, 0, 5.0), (500, 0, 0, 1.0), (300, 9, 0, 1.0), (80, 2, 0, None)])
def test_the_budget_note_is_a_whole_sentence(n, lost, gained, max_drop):
    """The unresolved case used to end '... about 141418 images would'."""
    d = stats.budget(*_correct(n, lost, gained), max_drop)
    assert d.note.endswith(".") and not d.note.endswith("..")
    last = d.note.rstrip(".").split()[-1]
    assert last not in {"would", "about", "the", "a", "to", "of", "images"}, d.note
    for clause in d.note.rstrip(".").split("; "):
        assert clause.split()[-1] not in {"would", "about", "the", "a", "to", "of"}, clause


def test_the_unresolved_budget_says_how_many_images_would_resolve_it():
    d = stats.budget(*_correct(100, 1), 1.5)
    assert not d.resolved
    m = re.search(r"about (\d+) validation images would resolve it\.$", d.note)
    assert m and int(m.group(1)) > 100, d.note


def test_bootstrap_of_an_accuracy_agrees_with_wilson_and_is_reproducible():
    correct = np.r_[np.ones(140), np.zeros(13)]
    est, lo, hi = stats.bootstrap(np.mean, correct, n_boot=4000, seed=1)
    w = stats.wilson(140, 153)
    assert est == pytest.approx(w.value)
    assert lo == pytest.approx(w.lo, abs=0.015) and hi == pytest.approx(w.hi, abs=0.015)
    assert stats.bootstrap(np.mean, correct, n_boot=500, seed=3) == stats.bootstrap(np.mean, correct, n_boot=500, seed=3)
    with pytest.raises(ValueError):
        stats.bootstrap(np.mean, correct, correct[:5])


def test_holm_adjustment_by_hand():
    """Holm (1979) on four p-values, worked by hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03,
    0.06, 0.04, made non-decreasing: 0.02, 0.03, 0.06, 0.06; returned in the input's order."""
    from edgecls.stats import holm

    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []
    with pytest.raises(ValueError, match="p-values in"):
        holm([0.1, 1.5])


def test_spread_of_seeds_is_a_student_t_interval():
    """Three seeds at 0.90, 0.92, 0.91: mean 0.91, sd 0.01, t(2) = 4.303, half-width 4.303 * 0.01 / sqrt(3) = 0.02484
    (by hand; scipy.stats.t agrees)."""
    from scipy.stats import t

    s = stats.spread([0.90, 0.92, 0.91])
    assert s.mean == pytest.approx(0.91) and s.sd == pytest.approx(0.01)
    assert s.hi - s.mean == pytest.approx(0.02484, abs=1e-5)
    assert s.hi - s.mean == pytest.approx(t.ppf(0.975, 2) * 0.01 / 3 ** 0.5, rel=1e-3)
    one = stats.spread([0.5])
    assert one.lo is None and one.min == one.max == 0.5
    many = stats.spread(np.linspace(0, 1, 40))  # beyond the table: the normal quantile
    assert many.hi - many.mean == pytest.approx(stats.Z95 * many.sd / 40 ** 0.5)
    with pytest.raises(ValueError, match="finite values"):
        stats.spread([])


def test_durations_read_as_people_write_them():
    from edgecls.configfile import format_duration, parse_duration
    from edgecls.errors import ConfigError

    assert [parse_duration(v) for v in (2700, "2700", "45m", "45min", "1h30m", "1.5h", "600s", "10m30s")] == \
           [2700, 2700, 2700, 2700, 5400, 5400, 600, 630]
    assert parse_duration(None) is None
    assert [format_duration(s) for s in (90, 5400, 42.4, 0)] == ["1m30s", "1h30m", "42s", "0s"]
    for bad in ("45 minutes", "-5", 0, "5d", True):
        with pytest.raises(ConfigError, match="time_limit="):
            parse_duration(bad)
