"""The time planner: what to train so that a run ends within its time limit on this machine (TrainConfig.time_limit).

How it decides (every step is in the plan's `why`, and metrics.json / the deploy report print it):

1. The settings it may use, best first: LADDER below, for the data's regime (a few hundred images or thousands), each
   entry an input side (relative to the backbone's own), how many stages stay frozen and cached, and whether the
   mirror image is cached too. The order is a judgment resting on throughput probes here
   (benchmarks/backbone_throughput.py) and short runs on CIFAR-10 and hymenoptera subsets (a larger input and a
   deeper trained tail scored higher there); it is not yet confirmed by the budget sweep (benchmarks/deploy_budget.py).
2. It walks the ladder and measures each setting it considers on a few real batches (probe.py): cache, training
   step, validation pass, the finish. Nothing is taken from a table of another machine's speeds.
3. It predicts the whole run from those numbers: making the cache, epochs x (training + validation), the finish,
   and what runs after training (`after_s`: deploy's export, INT8 and benchmark stages), against the time left.
4. It takes the first setting with which all training images get MIN_EPOCHS epochs; then adds epochs up to
   MAX_EPOCHS and seeds up to MAX_SEEDS while they fit. When no setting fits with all images, the last (cheapest)
   one trains on the stratified share of the images that fits.
5. What more time would buy: the setting one rung up the ladder with the time it needs, and the epochs and seeds
   the chosen one would get.

Several backbones (arch: auto) are compared on equal terms: the same images, epochs, seeds and split, each at its
own input side; when comparing all does not fit, the candidate with the lowest published ImageNet top-1 is dropped
first (ImageNet accuracy predicts transfer accuracy, Kornblith et al. 2019), down to the one the time allows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..configfile import format_duration
from ..errors import TrainError
from .probe import Cost, Setting, measure

MIN_EPOCHS = 2  # a floor chosen, not measured: one pass over the cached images leaves a fresh head under-trained
MAX_EPOCHS = 12  # a cap chosen, not measured: time beyond it goes to seeds (the sweep has not tested this yet)
MAX_SEEDS = 5
SMALL = 2_000  # fewer training images than this: the small-set ladder (the recipe table's row agrees)
FINISH_FIXED_S = 20.0  # temperature, plots, the mistakes gallery: measured 8-20 s here
SAFETY = 0.92  # plan to end here, not at the limit: speeds measured in seconds drift under other work


def epoch_cap(epochs: int) -> int:
    """The most epochs a planned run may have, for a config asking for `epochs`: the plan's and a lone run's growth."""
    return max(MIN_EPOCHS, min(epochs, MAX_EPOCHS))


@dataclass(frozen=True)
class Rung:
    """One ladder entry: input side as a share of the backbone's own, frozen stages (0: all layers train on the
    images), cached views (2: the image and its mirror), and which candidate backbone (0: the strongest by
    published ImageNet top-1 that may be picked, 1: the next, ...; a single given backbone uses the rank-0 rungs)."""

    scale: float
    stages: int
    views: int
    rank: int = 0

    def setting(self, arch: str, native: int) -> Setting:
        return Setting(arch, side(native, self.scale), self.stages)


def side(native: int, scale: float) -> int:
    """The input side for a share of the native one, a multiple of 32 (EfficientNet/MobileNet strides)."""
    return native if scale >= 1 else max(min(native, 64), int(round(native * scale / 32)) * 32)


# best first; the planner takes the first rung with which every training image gets MIN_EPOCHS epochs
LADDER: dict[str, tuple[Rung, ...]] = {
    "large": (Rung(1.0, 5, 2), Rung(1.0, 6, 2), Rung(1.0, 6, 2, 1), Rung(1.0, 6, 2, 2), Rung(1.0, 6, 1),
              Rung(1.0, 6, 1, 1), Rung(1.0, 6, 1, 2), Rung(0.75, 6, 1), Rung(0.75, 6, 1, 2), Rung(0.55, 6, 1, 2)),
    "small": (Rung(1.0, 0, 1), Rung(1.0, 0, 1, 1), Rung(1.0, 0, 1, 2), Rung(1.0, 5, 2), Rung(1.0, 6, 2),
              Rung(1.0, 6, 2, 2), Rung(0.75, 6, 2, 2)),
}
COMPARE_EPOCHS = 6  # comparing more backbones may not cut the pick's epochs below this (or below its own plan's)


def rungs(regime: str, archs: list[str]) -> list[tuple[Rung, str]]:
    """The ladder for these candidates (strongest first): each rung with its backbone, repeats dropped."""
    out, seen = [], set()
    for r in LADDER[regime]:
        if r.rank < len(archs) and (key := (archs[r.rank], r.scale, r.stages, r.views)) not in seen:
            seen.add(key)
            out.append((r, archs[r.rank]))
    return out


@dataclass
class RunPlan:
    """What one backbone trains with."""

    setting: Setting
    views: int
    cost: Cost

    def to_dict(self) -> dict:
        return {"setting": asdict(self.setting), "label": self.setting.label(), "views": self.views,
                "cost": self.cost.to_dict()}


@dataclass
class Plan:
    runs: list[RunPlan]  # one per compared backbone (one without arch: auto)
    n_train: int  # training images used
    n_available: int
    n_val: int
    epochs: int
    seeds: int
    budget_s: float  # the limit
    predicted: dict  # seconds: probe, cache, train, finish, after, total
    why: list[str] = field(default_factory=list)
    more_time: list[str] = field(default_factory=list)
    probes: list[dict] = field(default_factory=list)  # every setting measured: its costs and what it would give
    dropped: list[str] = field(default_factory=list)  # candidates not compared, and why

    def to_dict(self) -> dict:
        d = asdict(self)
        d["runs"] = [r.to_dict() for r in self.runs]
        return d


def predict(costs: list[Cost], views: int, n: int, n_val: int, epochs: int, seeds: int,
            after: float = 0.0) -> dict:
    """Seconds of each part of a run that trains each setting in `costs` on n images for `epochs` x `seeds`."""
    cache = sum(c.setup_s + (n * views + n_val) * c.cache_s for c in costs)
    epoch = sum(n * c.step_s + n_val * c.eval_s for c in costs)
    finish = sum(n_val * c.full_s for c in costs[:1]) + FINISH_FIXED_S  # only the pick is finished
    return {"cache": cache, "epoch": epoch, "train": seeds * epochs * epoch, "finish": finish, "after": after,
            "total": cache + seeds * epochs * epoch + finish + after}


def _fit(costs: list[Cost], views: int, n: int, n_val: int, left: float, after: float,
         seeds: int | None, max_epochs: int = MAX_EPOCHS) -> tuple[int, int]:
    """(epochs, seeds) that fit in `left` seconds: epochs up to max_epochs first, then seeds (unless given)."""
    base = predict(costs, views, n, n_val, 0, 1, after)
    room = left - base["total"]
    if room <= 0:
        return 0, seeds or 1
    epochs = min(max_epochs, int(room // (base["epoch"] * (seeds or 1))))
    if seeds is not None or epochs < max_epochs:
        return epochs, seeds or 1
    return epochs, max(1, min(MAX_SEEDS, int(room // (epochs * base["epoch"]))))


def make_plan(train_ds, val_ds, archs: list[str], budget_s: float, *, deadline: float, threads: int | None = None,
              after_s: Callable[[list[Setting]], float] = lambda s: 0.0, say: Callable[[str], None] = lambda s: None,
              seeds: int | None = None, input_size: int | None = None, compare: bool = False,
              extra: list[str] = (), max_epochs: int = MAX_EPOCHS, probe: Callable[..., Cost] = measure) -> Plan:
    """Choose what to train so that the run ends by `deadline` (time.monotonic()); `budget_s` is the whole limit
    (for the report). archs: the backbones that may be picked, strongest first (one, or arch auto's candidates);
    compare: also train the others on the same terms where the time allows (arch auto); extra: backbones that may
    be compared but not picked (over the latency budget), tried last. seeds: fixed by the user (None: the planner
    chooses). input_size: the largest side to use (None: each backbone's own). max_epochs: the most epochs to give
    (the config's, capped at MAX_EPOCHS; time left beyond them goes to seeds). probe: how a setting is measured."""
    from ..models.registry import default_preprocess, get_arch

    max_epochs = epoch_cap(max_epochs)
    n_all, n_val = len(train_ds), len(val_ds)
    regime = "small" if n_all < SMALL else "large"
    native = {a: input_size or default_preprocess(get_arch(a))[1].height for a in [*archs, *extra]}
    measured: dict[Setting, Cost] = {}
    probes: list[dict] = []

    def cost(s: Setting) -> Cost:
        if s not in measured:
            t0 = time.perf_counter()
            measured[s] = probe(s, train_ds, threads=threads)
            c = measured[s]
            say(f"  measured {s.label()}: " + (f"cache {1 / c.cache_s:.0f} img/s, " if c.cache_s else "")
                + f"training {1 / c.step_s:.0f} img/s ({time.perf_counter() - t0:.0f} s)")
        return measured[s]

    def fit(settings: list[Setting], views: int, n: int = n_all) -> tuple[int, int, float]:
        costs = [cost(x) for x in settings]
        left = deadline - time.monotonic()
        after = after_s(settings)
        e, k = _fit(costs, views, n, n_val, left * SAFETY, after, seeds, max_epochs)
        probes.append({"settings": [x.label() for x in settings], "views": views, "epochs_that_fit": e,
                       "predicted_s_at_min_epochs": predict(costs, views, n, n_val, MIN_EPOCHS, seeds or 1, after)["total"],
                       "left_s": left})
        return e, k, after

    why = [f"{n_all} training and {n_val} validation images: the {regime}-set ladder "
           f"({'every layer trained after a linear probe, then cached tails' if regime == 'small' else 'cached tails'})"]
    ladder = rungs(regime, list(archs))
    chosen = None
    for k, (rung, arch) in enumerate(ladder):
        epochs, n_seeds, _ = fit([rung.setting(arch, native[arch])], rung.views)
        if epochs >= MIN_EPOCHS:
            chosen = (k, rung, arch, epochs, n_seeds)
            break
    n_used, dropped = n_all, []
    if chosen is None:  # nothing fits with all images: the cheapest rung on the share of images that fits
        k, (rung, arch) = len(ladder) - 1, ladder[-1]
        st = rung.setting(arch, native[arch])
        c = cost(st)
        left = (deadline - time.monotonic()) * SAFETY - after_s([st])
        per_image = rung.views * c.cache_s + MIN_EPOCHS * c.step_s
        fixed = predict([c], rung.views, 0, n_val, MIN_EPOCHS, seeds or 1)["total"]
        n_used = int((left - fixed) // per_image) if per_image > 0 else 0
        floor = 10 * len(train_ds.classes)
        if n_used < floor:
            need = predict([c], rung.views, floor, n_val, MIN_EPOCHS, seeds or 1, after_s([st]))["total"]
            raise TrainError(f"the time limit leaves {format_duration(max(left, 0))} to train, and the cheapest setting "
                             f"({st.label()}) needs about {format_duration(need / SAFETY)} for even 10 images per class; "
                             "give a longer time_limit")
        why.append(f"no setting fits {MIN_EPOCHS} epochs over all {n_all} images: training on a stratified {n_used} of them")
        chosen = (k, rung, arch, MIN_EPOCHS, seeds or 1)
    k, rung, arch, epochs, n_seeds = chosen
    compared = [arch]
    if compare:  # the others, cheapest first, while the pick keeps its epochs (up to COMPARE_EPOCHS)
        others = sorted((a for a in [*archs, *extra] if a != arch), key=lambda a: cost(rung.setting(a, native[a])).cache_s
                        + cost(rung.setting(a, native[a])).step_s)
        floor = max(MIN_EPOCHS, min(epochs, COMPARE_EPOCHS))
        for a in others:
            e, s_, _ = fit([rung.setting(x, native[x]) for x in [*compared, a]], rung.views, n_used)
            if e >= floor:
                compared.append(a)
                epochs, n_seeds = e, s_
            else:
                dropped.append(f"{a}: comparing it too would leave {e} epoch(s), under {floor}")
                say(f"  not comparing {a}: it does not fit the time limit")
        if len(compared) > 1 and n_used == n_all:
            epochs, n_seeds, _ = fit([rung.setting(x, native[x]) for x in compared], rung.views)
    settings = [rung.setting(a, native[a]) for a in compared]
    costs = [cost(x) for x in settings]
    after = after_s(settings)
    pred = predict(costs, rung.views, n_used, n_val, epochs, n_seeds, after)
    pred["probe"] = sum(c.probe_s for c in measured.values())
    why.append(f"{settings[0].label()}, {rung.views} view(s) cached "
               f"({'the image and its mirror' if rung.views == 2 else 'no mirror'}): rung {k + 1} of {len(ladder)}, "
               f"the first with which every training image gets {MIN_EPOCHS}+ epochs"
               + (f"; compared with {', '.join(x.label() for x in settings[1:])} on the same terms" if len(settings) > 1 else ""))
    why.append(f"{epochs} epoch(s) x {n_seeds} seed(s) fit: predicted {format_duration(pred['total'])} of the "
               f"{format_duration(deadline - time.monotonic())} left (cache {format_duration(pred['cache'])}, training "
               f"{format_duration(pred['train'])}, finish {format_duration(pred['finish'])}"
               + (f", later stages {format_duration(after)}" if after else "") + ")")
    more = []
    if k > 0:
        up, up_arch = ladder[k - 1]
        st = up.setting(up_arch, native[up_arch])
        if st in measured:
            need = predict([measured[st]], up.views, n_all, n_val, MIN_EPOCHS, seeds or 1, after_s([st]))["total"]
            more.append(f"{st.label()} ({up.views} view(s)) needs about {format_duration(need / SAFETY)}")
    if epochs < max_epochs:
        need = predict(costs, rung.views, n_all, n_val, max_epochs, n_seeds, after)["total"]
        more.append(f"{max_epochs} epochs instead of {epochs}: about {format_duration(need / SAFETY)}")
    elif n_seeds < MAX_SEEDS and seeds is None:
        need = predict(costs, rung.views, n_all, n_val, epochs, n_seeds + 1, after)["total"]
        more.append(f"{n_seeds + 1} seeds: about {format_duration(need / SAFETY)}")
    if dropped:
        more.append(f"comparing {', '.join(d.split(':')[0] for d in dropped)} as well")
    return Plan([RunPlan(x, rung.views, c) for x, c in zip(settings, costs)], n_used, n_all, n_val, epochs, n_seeds,
                budget_s, pred, why, more, probes, dropped)


__all__ = ["COMPARE_EPOCHS", "LADDER", "MAX_EPOCHS", "MAX_SEEDS", "MIN_EPOCHS", "Plan", "Rung", "RunPlan", "epoch_cap",
           "make_plan", "predict", "rungs"]
