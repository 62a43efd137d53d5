"""`edgecls train`: train a classifier from a YAML recipe and/or flags (one flag per TrainConfig setting)."""

from __future__ import annotations

NAME = "train"
HELP = "train a classifier (Fashion-MNIST or an ImageFolder) from a YAML recipe and/or flags"


def add_arguments(p) -> None:
    from ..train.config import TrainConfig
    from .flags import add_config_flags

    p.add_argument("--config", help="YAML file of TrainConfig settings; flags override it")
    add_config_flags(p, TrainConfig)


def run(a) -> int:
    from ..train import TrainConfig, train
    from .flags import settings

    result = train(TrainConfig.from_dict(settings(a, TrainConfig, a.config)))
    if not result.metrics:  # a non-zero DDP rank: rank 0 reports
        return 0
    s = result.metrics["summary"]
    print(f"best model: {result.best_path}  " + "  ".join(f"{k}={v:.4f}" for k, v in s.items() if isinstance(v, float)))
    if result.metrics.get("task") == "multilabel":
        m = result.metrics["val"]["map"]
        print(f"val mAP {m['value']:.4f}, 95% interval [{m['interval'][0]:.4f}, {m['interval'][1]:.4f}], n={result.metrics['val']['n']}")
    ev = result.metrics.get("test") or result.metrics.get("val")
    if ev and ev.get("top1_interval"):  # an accuracy is a measurement: its n and 95% interval
        lo, hi = ev["top1_interval"]
        print(f"{'test' if 'test' in result.metrics else 'val'} top-1 {ev['top1']:.2%}, 95% interval [{lo:.2%}, {hi:.2%}], n={ev['n']}")
    return 0
