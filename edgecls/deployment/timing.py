"""How long `edgecls deploy` takes, before it takes it: the training it is about to start, and the stages after it.

- Before training without --time-limit: the recipe's setting is measured on a few batches (train/probe.py) and its
  training time predicted; over an hour, deploy stops and asks for --time-limit (fit a budget) or --yes (run it).
  Measured here: the "large set" row (full fine-tune, 15 epochs at 224 px) on 45,000 CIFAR-10 images trains at
  ~8 images/s on 2 cores, about 26 hours; nothing said so before this check.
- Under --time-limit, the planner leaves room for what runs after training: per target an FP32 export checked
  against PyTorch, an INT8 build, both evaluated on every validation image, then the benchmark. `after_training_s`
  predicts it from the model's MACs (per-target estimates for Lite0 at 224 px on 2 cores) and the number
  of validation images; the report shows it beside the time each stage took.
"""

from __future__ import annotations

from ..configfile import format_duration
from ..errors import DeployError

ASK_OVER_S = 3600.0  # without --time-limit or --yes, a predicted training time over this stops deploy before it starts

# Lite0 at 224 px (385 M MACs), 2 cores, per target: (seconds of the FP32 export + its check + the INT8 build, at
# ~300 calibration images; milliseconds per validation image of the FP32 and INT8 evaluations together). Fitted to
# the stage times of two deploy runs here (2026-12-05, benchmarks/deploy_budget.py): hymenoptera, Lite0 224 px, 153
# validation images; CIFAR-10, Lite2 260 px (2.23x Lite0's MACs), 5,000. Two runs per two numbers: MARGIN covers
# what they do not show. TensorRT's row is a guess (no GPU here).
PER_TARGET = {
    "onnxruntime": (13.4, 10.7),
    "openvino": (17.6, 9.3),
    "litert": (67.5, 10.1),
    "tensorrt": (180.0, 2.0),
}
LITE0_MACS = 385e6
FIXED_S = 15.0  # the report stage, loading the model, preparing validation pixels (5-10 s in those runs)
PREP_MS = 0.3  # preparing one validation image's pixels (decode, resize, crop), once per run
COLD_S = 2.0  # one cold start of one artifact (fresh process: import, load, first inference), at Lite0's size
MARGIN = 1.2  # the estimate was 2.6x (hymenoptera) and 1.6x (CIFAR-10) over the stages' time before this fit


def after_training_s(macs: float, n_val: int, targets: list[str], *, bench_runs: int, bench_warmup: int,
                     bench_cold: bool, calibration: int) -> float:
    """Predicted seconds of deploy's stages after training for a model of `macs` MACs."""
    scale = macs / LITE0_MACS
    total = FIXED_S + n_val * PREP_MS / 1000
    for t in targets:
        fixed, ms = PER_TARGET.get(t, PER_TARGET["onnxruntime"])
        total += (fixed * (0.5 + 0.5 * calibration / 300) + n_val * ms / 1000) * scale
        # edgecls-bench, FP32 and INT8: model-only, preprocessing and end-to-end chunks, each run once per timed
        # call, plus a cold start
        total += 2 * ((bench_runs + bench_warmup) * 3 * ms / 2 * scale / 1000 + (COLD_S * scale if bench_cold else 0.0))
    return total * MARGIN


def predicted_training(cost, n_train: int, n_val: int, epochs: int, views: int, runs: int = 1) -> dict:
    """Seconds of a fixed recipe's training from a measured probe.Cost (no time limit)."""
    cache = (cost.setup_s + (n_train * views + n_val) * cost.cache_s) if cost.setting.stages else 0.0
    per_epoch = n_train * cost.step_s + n_val * cost.eval_s
    return {"cache": cache, "epoch": per_epoch, "train": runs * epochs * per_epoch,
            "total": cache + runs * epochs * per_epoch + n_val * cost.full_s}


def ask_before(pred: dict, *, images_per_s: float, epochs: int, n_train: int, yes: bool, say) -> None:
    """Say how long training will take; stop before a run over ASK_OVER_S unless the user said --yes."""
    text = (f"training is predicted to take {format_duration(pred['total'])} on this machine ({epochs} epoch(s) x "
            f"{n_train} images at {images_per_s:.1f} images/s, measured on a few batches here)")
    if pred["total"] > ASK_OVER_S and not yes:
        raise DeployError(f"{text}. Give --time-limit (e.g. --time-limit 45m: edgecls then chooses what fits and stops on "
                          "time with the best validated model) or --yes to run it as planned")
    say(text)


__all__ = ["ASK_OVER_S", "after_training_s", "ask_before", "predicted_training"]
