"""The command line's shape: flags generated from the config classes and the export format table, precedence of flag
over YAML over default, did-you-mean hints for unknown settings, typed errors only, and help text as written."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from edgecls.cli.flags import add_config_flags, key_value, settings
from edgecls.cli.main import build_parser, main
from edgecls.compress.config import CompressConfig
from edgecls.configfile import setting
from edgecls.deployment.config import DeployConfig
from edgecls.errors import CompressError, ConfigError, DeployError, TrainError
from edgecls.serve.config import ServeConfig
from edgecls.train.config import TrainConfig


def parser_of(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser(command)._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def dests(command: str) -> set[str]:
    return {a.dest for a in parser_of(command)._actions if a.dest != "help"}


def fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_config_setting_has_a_flag_and_no_flag_is_made_up():
    assert dests("train") == fields(TrainConfig) | {"config"}
    # --epochs: a shortcut into train; --verbose: where other tools' output goes (edgecls.quiet), not a setting
    assert dests("deploy") == fields(DeployConfig) | {"config", "epochs", "verbose"}
    assert dests("compress") == fields(CompressConfig) - {"steps"} | {"config", "verbose"}  # steps: a list of mappings, YAML only
    assert dests("serve") == fields(ServeConfig) | {"models"}


def test_flag_spellings_the_readme_and_scripts_use_still_parse(tmp_path):
    a = build_parser("deploy").parse_args(["deploy", "photos", "--targets", "ort", "litert", "--max-drop", "1", "--budget-ms",
                                           "10", "--train", "lr=5e-4", "batch-size=16", "--train", "ema=false", "--no-dedup",
                                           "--bench-threads", "1", "2", "--open-set", "none", "-o", "out", "--epochs", "3"])
    assert (a.data, a.targets, a.max_drop, a.budget_ms, a.out, a.epochs) == ("photos", ["ort", "litert"], 1.0, 10.0, "out", 3)
    assert a.train == {"lr": 5e-4, "batch_size": 16, "ema": False} and a.dedup is False and a.bench_threads == [1, 2]
    a = build_parser("train").parse_args(["train", "--data", "photos/", "--pretrained", "--mode", "linear_probe", "--epochs", "5",
                                          "--resume", "--no-ema"])
    assert (a.data, a.pretrained, a.mode, a.epochs, a.resume, a.ema, a.lr) == ("photos/", True, "linear_probe", 5, True, False, None)
    a = build_parser("compress").parse_args(["compress", "c.yaml", "--max-drop", "0.3", "-o", "out", "--val-limit", "200"])
    assert (a.config, a.max_drop, a.out_dir, a.val_limit, a.model) == ("c.yaml", 0.3, "out", 200, None)
    a = build_parser("export").parse_args(["export", "m.pt", "-f", "tensorrt", "--precision", "int8", "--dynamic-batch",
                                           "--batch-profile", "1", "8", "32", "--no-fuse-preprocess", "--calibration", "imgs/"])
    assert (a.format, a.precision, a.dynamic_batch, a.batch, a.fuse_preprocess, a.calibration) == (
        ["tensorrt"], "int8", True, [1, 8, 32], False, "imgs/")


def test_a_new_config_field_shows_up_as_a_flag_with_its_help_type_and_default():
    @dataclasses.dataclass
    class More(TrainConfig):
        warp_factor: float = setting(2.5, "how hard to warp the images, in [0, 9]", metavar="W")
        warp_kind: str = setting("none", "which warp to apply", ("none", "swirl"))
        warp_layers: list[int] = setting([1, 2], "layers to warp")

    p = argparse.ArgumentParser(prog="t")
    add_config_flags(p, More)
    text = p.format_help()
    assert "--warp-factor W" in text and "how hard to warp the images, in [0, 9] (default: 2.5)" in text
    assert "--warp-kind {none,swirl}" in text and "--warp-layers WARP_LAYERS [WARP_LAYERS ...]" in text and "(default: 1 2)" in text
    a = p.parse_args(["--warp-factor", "3", "--warp-layers", "4", "5"])
    assert a.warp_factor == 3.0 and a.warp_layers == [4, 5] and a.warp_kind is None and a.lr is None
    with pytest.raises(SystemExit):
        p.parse_args(["--warp-kind", "twirl"])


def test_export_flags_are_the_options_of_the_format_table():
    from edgecls.exporters import FORMATS

    options = set().union(*(f.options for f in FORMATS.values()))
    own = {"source", "pretrained", "format", "out_dir", "name", "no_verify", "verbose"}  # what to export and where, not how
    assert dests("export") - own == options
    p = parser_of("export")
    assert next(a for a in p._actions if a.dest == "format").choices == list(FORMATS)
    from edgecls.exporters import executorch, tensorrt, tflite

    precision = next(a for a in p._actions if a.dest == "precision")
    assert set(precision.choices) == set(tflite.PRECISIONS) | set(tensorrt.PRECISIONS) | set(executorch.PRECISIONS)
    assert "[tflite, tensorrt, executorch; default: fp32]" in precision.help


def test_flag_over_yaml_over_default(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text("lr: 5e-4\nepochs: 7\n")
    a = build_parser("train").parse_args(["train", "--config", str(cfg), "--epochs", "2"])
    t = TrainConfig.from_dict(settings(a, TrainConfig, a.config))
    assert (t.epochs, t.lr, t.batch_size) == (2, 5e-4, TrainConfig().batch_size)


def test_unknown_settings_say_which_known_one_was_meant(tmp_path, capsys):
    (tmp_path / "r.yaml").write_text("lr: 5e-4\nepoch: 3\n")
    with pytest.raises(TrainError, match=r"unknown training setting 'epoch' \(did you mean 'epochs'\?\)"):
        TrainConfig.from_yaml(tmp_path / "r.yaml")
    assert main(["train", "--config", str(tmp_path / "r.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "edgecls: error: unknown training setting 'epoch' (did you mean 'epochs'?)"
    (tmp_path / "photos").mkdir()
    assert main(["deploy", str(tmp_path / "photos"), "--train", "lrr=5e-4", "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "edgecls: error: unknown training setting 'lrr' (did you mean 'lr'?)"
    assert not (tmp_path / "out").exists()  # refused before any work
    with pytest.raises(DeployError, match=r"'tragets' \(did you mean 'targets'\?\)"):
        DeployConfig.from_dict({"data": "photos", "tragets": ["ort"]})
    with pytest.raises(CompressError, match=r"unknown quantize option 'max_dorp' \(did you mean 'max_drop'\?\)"):
        CompressConfig.from_dict({"model": "m.pt", "steps": [{"quantize": {"max_dorp": 1}}]})
    with pytest.raises(CompressError, match=r"'quantise': \{\}\} \(did you mean 'quantize'\?\)"):
        CompressConfig.from_dict({"model": "m.pt", "steps": [{"quantise": {}}]})
    with pytest.raises(TrainError, match=r"'zzz'; known: allow_empty_labels, arch"):  # nothing close: the whole list
        TrainConfig.from_dict({"zzz": 1})


def test_key_value_reads_yaml_values():
    assert key_value("lr=5e-4") == ("lr", 5e-4) and key_value("backbone-lr-mult=1E-1") == ("backbone_lr_mult", 0.1)
    assert key_value("arch=efficientnet_lite0") == ("arch", "efficientnet_lite0") and key_value("ema=true") == ("ema", True)
    with pytest.raises(argparse.ArgumentTypeError, match="use KEY=VALUE"):
        key_value("lr")


def test_main_prints_edgecls_errors_on_one_line_and_lets_bugs_through(tmp_path, capsys, monkeypatch):
    assert main(["predict", str(tmp_path / "missing.onnx"), str(tmp_path / "x.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgecls: error: ") and err.count("\n") == 1 and "not found" in err

    from edgecls.cli import archs

    def raises(exc):
        def run(a):
            raise exc
        return run

    monkeypatch.setattr(archs, "run", raises(ConfigError("a setting that cannot work")))
    assert main(["archs"]) == 2
    assert capsys.readouterr().err == "edgecls: error: a setting that cannot work\n"
    monkeypatch.setattr(archs, "run", raises(ValueError("a bug, not an answer")))
    with pytest.raises(ValueError, match="a bug"):  # not turned into "error: ...": its traceback shows where
        main(["archs"])


def test_help_prints_percent_signs_as_written(capsys):
    for command in ("eval", "deploy", "train"):
        with pytest.raises(SystemExit) as exit:
            main([command, "--help"])
        assert exit.value.code == 0
        out = capsys.readouterr().out
        assert "%%" not in out, command
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(bootstrap 95% intervals)" in out and "FPR at 95% TPR" in out


def test_a_command_builds_only_its_own_flags_so_predict_needs_no_torch():
    code = ("import sys; from edgecls.cli.main import build_parser; build_parser('predict').parse_args(['predict', 'm.onnx', "
            "'x.jpg']); build_parser('').format_help(); print('torch' in sys.modules, 'edgecls.exporters' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["False", "False"], r.stderr[-2000:]
