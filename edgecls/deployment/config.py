"""DeployConfig: every setting of `edgecls deploy`, with what it means (the CLI help and the report read it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..configfile import SettingsFile, known_fields, setting
from ..errors import ConfigError, DeployError, UnknownTargetError
from ..runtime.runtimes import RUNTIMES

DEFAULT_TARGETS = ["onnxruntime", "openvino", "litert"]
_INT8 = [r for r in RUNTIMES.values() if r.int8]  # the runtimes compress/deploy have an INT8 target for


@dataclass
class DeployConfig(SettingsFile):
    _error = DeployError  # not annotated: a class attribute, not a dataclass field
    _what = "deploy"
    data: str = setting("", "ImageFolder of your photos (root/<class>/<images>), or a folder holding train/ and val/ "
                            "class folders; multi-label: a folder holding labels.csv or labels.json (judged in mAP)")
    val_dir: str | None = setting(None, "validation ImageFolder with the same class folders; default: val/ beside "
                                        "train/ in DATA, else a stratified split of DATA")
    out: str = setting("deploy_out", "output folder: report.html/.md/.json, the model, every artifact; rerunning with "
                                     "the same folder resumes")
    targets: list[str] = setting(list(DEFAULT_TARGETS), "runtimes to ship: " + ", ".join(
        r.name + (" (GPU machine)" if r.device == "cuda" else "") for r in _INT8), metavar="TARGET")
    max_drop: float = setting(1.0, "accuracy budget: INT8 may lose at most this many top-1 points (mAP x 100 for "
                                   "multi-label) against the FP32 artifact of the same runtime, on the validation "
                                   "images (paired test)", metavar="PTS")
    budget_ms: float | None = setting(None, "latency budget: end-to-end p50 per image (decode excluded) measured here; "
                                            "the pick is the fastest artifact within the accuracy budget that fits",
                                     metavar="MS")
    arch: str | None = setting(None, "architecture, see `edgecls archs` (default: efficientnet_lite0; with --time-limit: "
                                     "auto); auto: the candidates with ImageNet weights here (EfficientNet-Lite0/1/2, "
                                     "MobileNetV3 when cached) are compared on the same validation images (under "
                                     "--time-limit: the strongest that fits, and the others where time allows) and the pick "
                                     "is the most accurate whose INT8 artifact meets --budget-ms, more accurate meaning by "
                                     "the paired test and across seeds (else the cheaper one)")
    time_limit: str | None = setting(None, "wall-clock budget of the whole run on this machine (45m, 1h30m, 2700 = seconds): "
                                           "training is planned from measured speeds to leave room for the export, INT8 "
                                           "and benchmark stages, and stops on time with the best validated model",
                                     metavar="DURATION")
    seeds: int | None = setting(None, "train this many seeds on the same split; the best on validation is kept and the "
                                      "report shows the spread (default 1, or the planner's choice under --time-limit)",
                                metavar="N")
    yes: bool = setting(False, "start training even when it is predicted to take more than an hour (without "
                               "--time-limit, deploy stops before such a run and says how long it would take)")
    recipe: str | None = setting(None, "a TrainConfig YAML to train with instead of the recipe chosen from the data",
                                 metavar="YAML")
    train: dict[str, Any] = setting({}, "TrainConfig settings that override the recipe (e.g. {epochs: 3}); --epochs sets one",
                                    metavar="KEY=VALUE")
    val_fraction: float = setting(0.2, "share of each class held out for validation when there is no validation folder")
    seed: int = setting(0, "seed of the split, training and calibration subsets")
    strict: bool = setting(False, "stop with an error listing unreadable or non-image files instead of skipping them")
    dedup: bool = setting(True, "remove from validation the images that are byte-identical to a training image")
    calibration: int = setting(300, "INT8 calibration images, taken from the training split (all of it when smaller)",
                               metavar="N")
    target_cpu: str | None = setting("this", "the CPU class the INT8 artifacts are built for: x86-vnni, x86-avx2 (x86 without "
                                      "VNNI, whose U8S8 kernels saturate), arm64, or this (the machine running deploy); "
                                      "recorded in each artifact. Accuracy and latency are still measured here",
                              metavar="CPU")
    int8_keep_float: int = setting(12, "how many stages the INT8 fallback may keep in float before it gives up", metavar="N")
    verify_images: int = setting(16, "validation images each export is checked against PyTorch on before it is kept",
                                 metavar="N")
    bench_runs: int = setting(100, "timed runs per artifact in the latency benchmark", metavar="N")
    bench_warmup: int = setting(10, "untimed warmup runs per artifact", metavar="N")
    bench_threads: list[int] = setting([0], "runtime thread counts to benchmark; 0 = the runtime's default", metavar="N")
    bench_cold: bool = setting(True, "measure cold start (import, load, first inference) in a fresh process")
    threads: int | None = setting(None, "PyTorch threads for training and evaluation (default: PyTorch's own)")
    open_set: str | None = setting("msp", "open-set score of each artifact's rejection threshold: msp, max_logit or "
                                          "energy, fitted on the validation images (on the artifact's own runtime) to "
                                          "keep `coverage` of them and stored in the artifact with its drift reference "
                                          "(Predictor(path, reject=True), predictor.start_monitor()); none: neither",
                                   ("msp", "max_logit", "energy", "none"))
    coverage: float = setting(0.95, "share of the known classes' validation images the open-set threshold keeps, in (0, 1)")
    ood: list[str] = setting([], "folders of images that are none of the classes (what the camera will also see): the "
                                 "report gives each artifact's AUROC, FPR at 95% TPR and rejection rate on each",
                             metavar="DIR")

    def __post_init__(self) -> None:
        from ..compress.targets import target
        from ..train.config import TrainConfig

        if not self.data:
            raise DeployError("deploy needs DATA: a folder of class folders of your photos")
        if not self.targets:
            raise DeployError(f"give at least one target: {', '.join(r.name for r in _INT8[:-1])} or {_INT8[-1].name}")
        try:
            names = [target(t).name for t in self.targets]
        except UnknownTargetError as exc:
            raise DeployError(str(exc)) from None
        if len(set(names)) != len(names):
            raise DeployError(f"targets {self.targets} name a runtime twice")
        self.targets = names
        from ..runtime.cpuinfo import resolve_target_cpu

        try:
            self.target_cpu = resolve_target_cpu(self.target_cpu)
        except ConfigError as exc:
            raise DeployError(str(exc)) from None
        if not isinstance(self.max_drop, (int, float)) or self.max_drop < 0:
            raise DeployError(f"max_drop={self.max_drop!r}: the budget is how many top-1 points INT8 may lose, >= 0 "
                              "(a negative budget would ask INT8 to beat its own FP32 model)")
        if self.budget_ms is not None and self.budget_ms <= 0:
            raise DeployError(f"budget_ms={self.budget_ms}: a latency budget must be > 0 ms")
        if not 0 < self.val_fraction < 1:
            raise DeployError(f"val_fraction={self.val_fraction} must be in (0, 1)")
        if self.calibration < 1 or self.verify_images < 1 or self.bench_runs < 2 or self.bench_warmup < 0:
            raise DeployError("calibration and verify_images must be >= 1, bench_runs >= 2, bench_warmup >= 0")
        if any(t < 0 for t in self.bench_threads):
            raise DeployError("bench_threads must be >= 0 (0: the runtime's default)")
        if self.recipe is not None and not Path(self.recipe).is_file():
            raise DeployError(f"recipe {self.recipe}: no such file (a TrainConfig YAML)")
        if self.open_set in (None, "none", "", False):
            self.open_set = None
        elif self.open_set not in ("msp", "max_logit", "energy"):
            raise DeployError(f"open_set={self.open_set!r}: use msp, max_logit, energy or none")
        if not 0 < self.coverage < 1:
            raise DeployError(f"coverage={self.coverage}: the share of known images the threshold keeps must be in (0, 1), e.g. 0.95")
        if isinstance(self.ood, (str, Path)):
            self.ood = [str(self.ood)]
        missing = [d for d in self.ood if not Path(d).is_dir()]
        if missing:
            raise DeployError(f"ood folder(s) {missing} not found; give folders of images that are none of the classes")
        if self.ood and self.open_set is None:
            raise DeployError("ood folders are measured against the open-set score: set open_set (msp, max_logit, energy)")
        from ..configfile import parse_duration

        parse_duration(self.time_limit, DeployError)
        if self.arch is None:
            self.arch = "auto" if self.time_limit else "efficientnet_lite0"
        if self.seeds is not None and not (isinstance(self.seeds, int) and 1 <= self.seeds <= 50):
            raise DeployError(f"seeds={self.seeds!r}: train 1 to 50 seeds")
        if not isinstance(self.train, dict):
            raise DeployError("train: must be a mapping of TrainConfig settings")
        known_fields(TrainConfig, self.train, DeployError, "training")  # a typo fails now, not after the data scan
        for k in ("time_limit", "seeds", "arch"):
            if k in self.train:
                raise DeployError(f"give {k} as deploy's own setting (--{k.replace('_', '-')}), not inside train:")

    @property
    def time_limit_s(self) -> float | None:
        from ..configfile import parse_duration

        return parse_duration(self.time_limit, DeployError)


__all__ = ["DEFAULT_TARGETS", "DeployConfig"]
