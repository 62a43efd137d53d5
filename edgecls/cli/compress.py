"""`edgecls compress CONFIG.yaml`: prune -> fine-tune/distill -> INT8 under --max-drop (flags: CompressConfig settings)."""

from __future__ import annotations

NAME = "compress"
HELP = "prune -> fine-tune/distill -> INT8 (PTQ/QAT) from a YAML config, under --max-drop"


def add_arguments(p) -> None:
    from ..compress.config import CompressConfig
    from .flags import add_config_flags, add_verbose_flag

    p.add_argument("config", help="YAML: model, data, steps (see benchmarks/compress_*.yaml)")
    add_config_flags(p, CompressConfig, skip=("steps",), short={"out_dir": "-o"},
                     more_help={"model": "; overrides the config's", "max_drop": "; given here, it overrides every step's own"})
    add_verbose_flag(p)


def run(a) -> int:
    from pathlib import Path

    from ..compress import CompressConfig
    from ..compress import run as compress
    from ..quiet import terminal
    from .flags import quietly, settings

    cfg = settings(a, CompressConfig, a.config)
    if a.max_drop is not None:  # the YAML's max_drop fills the steps without their own; the flag's sets every one
        cfg.pop("max_drop")
    cfg = CompressConfig.from_dict(cfg)
    if a.max_drop is not None:
        cfg.set_max_drop(a.max_drop)

    def body() -> int:
        compress(cfg)
        print(f"report: {Path(cfg.out_dir) / 'compress.json'}", file=terminal())
        return 0

    return quietly(a, cfg.out_dir, body)
