"""`edgecls deploy DATA --targets ... -o OUT`: the whole journey; the flags are the DeployConfig settings."""

from __future__ import annotations

NAME = "deploy"
HELP = "a folder of photos -> trained, INT8, exported, verified, benchmarked models per runtime + report"
DESCRIPTION = ("Train on your photos, quantize under one accuracy budget, export to every target runtime, verify, "
               "benchmark, pick, and write OUT/report.html. Rerunning with the same -o resumes: only stages whose inputs "
               "changed run again.")


def add_arguments(p) -> None:
    from ..compress.targets import TARGETS
    from ..deployment.config import DeployConfig
    from .flags import add_config_flags, add_verbose_flag

    p.add_argument("--config", help="YAML of deploy settings (the DeployConfig fields); flags override it")
    aliases = ", ".join(f"{a}={t.name}" for t in TARGETS.values() for a in t.aliases)
    add_config_flags(p, DeployConfig, positional=("data",), short={"out": "-o"},
                     more_help={"targets": f"; aliases: {aliases}", "train": "; e.g. --train lr=5e-4 batch_size=16"})
    p.add_argument("--epochs", type=int, help="training epochs (overrides the recipe's)")
    add_verbose_flag(p)


def run(a) -> int:
    from ..deployment.config import DeployConfig
    from ..deployment.pipeline import deploy
    from ..errors import DeployError
    from .flags import given, quietly

    base = DeployConfig.read_yaml(a.config) if a.config else {}
    train = base.get("train") or {}
    if not isinstance(train, dict):
        raise DeployError(f"{a.config}: train: must be a mapping of TrainConfig settings, e.g. {{epochs: 3}}")
    cfg = {**base, **given(a, DeployConfig)}  # flag > YAML > default; --train and --epochs add to the YAML's train
    cfg["train"] = {**train, **(a.train or {}), **({} if a.epochs is None else {"epochs": a.epochs})}
    if not cfg.get("data"):
        raise DeployError("give DATA, the folder of your photos (or data: in --config)")
    out = DeployConfig.from_dict(cfg).out  # a bad setting fails here, before any log is opened

    def body() -> int:
        deploy(config=cfg)  # it prints the pick and where the report is
        return 0

    return quietly(a, out, body)
