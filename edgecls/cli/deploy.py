"""`edgecls deploy DATA --targets ... -o OUT`: the command line of deploy (flags are DeployConfig fields)."""

from __future__ import annotations

import argparse


def _help(name: str) -> str:
    from ..deployment.config import DeployConfig

    h = DeployConfig.help()[name]
    d = h["default"]
    return (h["help"] + ("" if d in (None, {}, "", []) else f" (default: {' '.join(map(str, d)) if isinstance(d, list) else d})")).replace("%", "%%")


def _kv(text: str) -> tuple[str, object]:
    from ..configfile import load_yaml

    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE, e.g. epochs=3")
    return key.strip().replace("-", "_"), load_yaml(value)


def add_parser(sub) -> None:
    from ..compress.targets import TARGETS

    p = sub.add_parser("deploy", help="a folder of photos -> trained, INT8, exported, verified, benchmarked models per runtime + report",
                       description="Train on your photos, quantize under one accuracy budget, export to every target "
                                   "runtime, verify, benchmark, pick, and write OUT/report.html. Rerunning with the same "
                                   "-o resumes: only stages whose inputs changed run again.")
    p.add_argument("data", nargs="?", help=_help("data"))
    p.add_argument("--config", help="YAML of deploy settings (the DeployConfig fields); flags override it")
    p.add_argument("--val-dir", help=_help("val_dir"))
    p.add_argument("--targets", nargs="+", metavar="TARGET",
                   help=_help("targets") + "; aliases: " + ", ".join(f"{a}={t.name}" for t in TARGETS.values() for a in t.aliases))
    p.add_argument("--max-drop", type=float, metavar="PTS", help=_help("max_drop"))
    p.add_argument("--budget-ms", type=float, metavar="MS", help=_help("budget_ms"))
    p.add_argument("--arch", help=_help("arch"))
    p.add_argument("--recipe", metavar="YAML", help=_help("recipe"))
    p.add_argument("--epochs", type=int, help="training epochs (overrides the recipe's)")
    p.add_argument("--train", nargs="+", type=_kv, metavar="KEY=VALUE", help=_help("train") + "; e.g. --train lr=5e-4 batch_size=16")
    p.add_argument("--val-fraction", type=float, help=_help("val_fraction"))
    p.add_argument("--seed", type=int, help=_help("seed"))
    p.add_argument("--strict", action=argparse.BooleanOptionalAction, default=None, help=_help("strict"))
    p.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=None, help=_help("dedup"))
    p.add_argument("--calibration", type=int, metavar="N", help=_help("calibration"))
    p.add_argument("--int8-keep-float", type=int, metavar="N", help=_help("int8_keep_float"))
    p.add_argument("--verify-images", type=int, metavar="N", help=_help("verify_images"))
    p.add_argument("--bench-runs", type=int, metavar="N", help=_help("bench_runs"))
    p.add_argument("--bench-warmup", type=int, metavar="N", help=_help("bench_warmup"))
    p.add_argument("--bench-threads", type=int, nargs="+", metavar="N", help=_help("bench_threads"))
    p.add_argument("--bench-cold", action=argparse.BooleanOptionalAction, default=None, help=_help("bench_cold"))
    p.add_argument("--threads", type=int, help=_help("threads"))
    p.add_argument("--open-set", choices=("msp", "max_logit", "energy", "none"), help=_help("open_set"))
    p.add_argument("--coverage", type=float, help=_help("coverage"))
    p.add_argument("--ood", nargs="+", metavar="DIR", help=_help("ood"))
    p.add_argument("-o", "--out", help=_help("out"))
    p.set_defaults(func=cmd_deploy)


def cmd_deploy(a) -> int:
    from ..deployment.config import DeployConfig
    from ..deployment.data import DeployError
    from ..deployment.pipeline import deploy

    base = DeployConfig.from_yaml(a.config).to_dict() if a.config else {}
    flags = {k: getattr(a, k) for k in ("data", "val_dir", "targets", "max_drop", "budget_ms", "arch", "recipe", "val_fraction",
                                        "seed", "strict", "dedup", "calibration", "int8_keep_float", "verify_images",
                                        "bench_runs", "bench_warmup", "bench_threads", "bench_cold", "threads", "out",
                                        "open_set", "coverage", "ood")
             if getattr(a, k) is not None}
    train = dict(base.get("train") or {})
    train.update(dict(a.train or []))
    if a.epochs is not None:
        train["epochs"] = a.epochs
    if not (flags.get("data") or base.get("data")):
        raise DeployError("give DATA, the folder of your photos (or data: in --config)")
    deploy(config={**base, **flags, "train": train})  # it prints the pick and where the report is
    return 0


__all__ = ["add_parser", "cmd_deploy"]
