"""`edgecls export SOURCE -f FORMAT...`: one flag per export option of the format table (exporters.FORMATS); each
format is given the options it takes, so a flag never reaches a format it does not apply to."""

from __future__ import annotations

from pathlib import Path

NAME = "export"
HELP = ("export a .pt or a registered arch to ONNX / OpenVINO / TFLite / TensorRT / ExecuTorch / .pt, verified against "
        "PyTorch")

# How the command line spells an export option of FORMATS: its flag (default --name-with-dashes), argparse settings,
# and `to_option`, which turns the flag's value into the option's. An option the table gains without an entry here
# still gets a flag, typed by its default (_generic).
OPTION_FLAGS = {
    "precision": {"help": "TFLite: fp32, fp16, dynamic_int8, int8 (PT2E), int8_all (all-int8 graph); TensorRT: fp32, fp16, "
                          "int8; ExecuTorch: fp32, int8 (PT2E, XNNPACK)"},
    "calibration": {"help": "folder of your images for INT8 calibration (default: the bundled photos)",
                    "to_option": lambda folder: calibration_images(folder)},
    "opset": {"type": int, "help": "ONNX opset of the exported graph"},
    "dynamic_batch": {"action": "store_true", "help": "dynamic batch dimension instead of batch 1"},
    "fuse_preprocess": {"flag": "--no-fuse-preprocess", "action": "store_false",
                        "help": "float NCHW input instead of uint8 NHWC with normalization in the graph"},
    "fp16_weights": {"action": "store_true", "help": "OpenVINO: store weights in FP16"},
    "batch": {"flag": "--batch-profile", "type": int, "nargs": 3, "metavar": ("MIN", "OPT", "MAX"), "to_option": tuple,
              "help": "TensorRT with --dynamic-batch: the batch sizes the engine takes and the one it is tuned for "
                      "(default 1 8 32)"},
    "int8_source": {"help": "TensorRT INT8: qdq = symmetric Q/DQ ONNX by ModelOpt PTQ (TensorRT 10 and 11, default); "
                            "calibrator = TensorRT 10's entropy calibrator"},
    "calibration_cache": {"metavar": "FILE", "help": "TensorRT calibrator: read/write the INT8 calibration cache here"},
    "workspace_mib": {"type": int, "metavar": "MIB", "help": "TensorRT: builder workspace memory in MiB"},
    "timing_cache": {"metavar": "FILE", "help": "TensorRT: read/write the builder's timing cache here (faster rebuilds)"},
    "dla_core": {"type": int, "metavar": "N", "help": "TensorRT on Jetson: build for this DLA core (GPU fallback allowed)"},
    "keep_float": {"nargs": "+", "metavar": "MODULE", "to_option": tuple,
                   "help": "ExecuTorch INT8: PyTorch modules (e.g. conv_stem) to keep in float"},
    "target_cpu": {"metavar": "CPU", "help": "INT8: the CPU class the artifact is for, recorded in its spec (x86-vnni, "
                                             "x86-avx2, arm64, or this = this machine's; default this); XNNPACK's int8 "
                                             "kernels need no other form for any of them"},
}


def _choices() -> dict[str, tuple]:
    """The values the exporters accept, where they list them."""
    from ..exporters import executorch, tensorrt, tflite

    return {"precision": tuple(dict.fromkeys(tflite.PRECISIONS + tensorrt.PRECISIONS + executorch.PRECISIONS)),
            "int8_source": tensorrt.INT8_SOURCES}


def _generic(default) -> dict:
    import argparse

    if isinstance(default, bool):
        return {"action": argparse.BooleanOptionalAction}
    if isinstance(default, (list, tuple)):
        return {"nargs": "+", "to_option": tuple}
    return {"type": type(default)} if isinstance(default, (int, float)) else {}


def options() -> dict[str, list[str]]:
    """export option -> the formats that take it, in FORMATS order."""
    from ..exporters import FORMATS

    out: dict[str, list[str]] = {}
    for fmt in FORMATS.values():
        for name in fmt.options:
            out.setdefault(name, []).append(fmt.name)
    return out


def _spec(name: str) -> dict:
    from ..exporters import FORMATS

    default = next(f.options[name] for f in FORMATS.values() if name in f.options)
    return {**({"help": f"export option {name}"} | _generic(default)), **OPTION_FLAGS.get(name, {})}


def add_arguments(p) -> None:
    from ..exporters import FORMATS

    p.add_argument("source", help="an edgecls .pt file, or an arch name (see `edgecls archs`)")
    p.add_argument("--pretrained", action="store_true", help="with an arch name: load ImageNet weights")
    p.add_argument("-f", "--format", nargs="+", default=["onnx", "openvino"], choices=list(FORMATS),
                   help="formats to write: pt, onnx, openvino (.xml), tflite, tensorrt (.engine, NVIDIA GPU), "
                        "executorch (.pte)")
    p.add_argument("-o", "--out-dir", default="exported")
    p.add_argument("--name", help="file stem (default: the source name)")
    choices = _choices()
    for name, formats in options().items():
        spec = _spec(name)
        flag = spec.pop("flag", "--" + name.replace("_", "-"))
        spec.pop("to_option", None)
        defaults = {repr(FORMATS[f].options[name]) for f in formats}
        default = FORMATS[formats[0]].options[name]
        shown = f"; default: {default}" if len(defaults) == 1 and default not in (None, (), [], "") and "action" not in spec else ""
        spec["help"] = f"{spec['help']} [{', '.join(formats)}{shown}]"  # which formats take it: the table says
        p.add_argument(flag, dest=name, default=None, **({"choices": choices[name]} if name in choices else {}), **spec)
    p.add_argument("--no-verify", action="store_true", help="skip the check against PyTorch on real photos")
    from .flags import add_verbose_flag

    add_verbose_flag(p)


def run(a) -> int:
    from .flags import quietly

    return quietly(a, a.out_dir, lambda: _export(a))


def _export(a) -> int:
    from .. import create_model, export, load
    from ..exporters import FORMATS
    from .render import console, text

    src = Path(a.source)
    if src.suffix == ".pt":
        model, spec = load(src)
        name = a.name or src.stem
    else:
        model, spec = create_model(a.source, pretrained=a.pretrained)
        name = a.name or a.source
    flags = {n: getattr(a, n) for n in options() if getattr(a, n) is not None}
    converted: dict = {}  # each flag's option value, made once (calibration reads a folder of images)
    con = console()
    for fmt in a.format:
        for n in (flags.keys() & FORMATS[fmt].options.keys()) - converted.keys():
            converted[n] = _spec(n).get("to_option", lambda v: v)(flags[n])
        opts = {n: converted[n] for n in flags if n in FORMATS[fmt].options}
        precision = opts.get("precision", "fp32")
        tag = f"_{precision}" if precision != "fp32" else ""
        out = Path(a.out_dir) / f"{name}{tag}{FORMATS[fmt].suffix}"
        with con.status(f"exporting {out} ..."):
            result = export(model, spec, out, verify=not a.no_verify, **opts)
        con.print(f"[green]wrote[/] {text(result)}")
    return 0


def calibration_images(folder: str) -> list:
    """Every image under `folder` (recursively), decoded to RGB uint8: INT8 calibration from the user's own data."""
    from ..errors import DataError
    from ..runtime.decode import IMAGE_SUFFIXES
    from ..runtime.images import load_image

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"--calibration {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found there")
    return [load_image(p, color=None, channels=3)[0] for p in files]
