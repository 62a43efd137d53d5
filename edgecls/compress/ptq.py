"""Post-training INT8 through each runtime's own tooling: ONNX Runtime quantize_static (QDQ) and NNCF for OpenVINO.

Both take calibration inputs already in the artifact's own input format (see data.dataset_calibration) and the
layers to keep in float (`keep_float`: module names such as "conv_stem", "se", "blocks.5", matched as whole path
components in each tool's node names, which all carry the PyTorch module path); budget.py decides that list.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import EdgeclsError, ExportError, require
from ..runtime.spec import ModelSpec

ORT_METHODS = ("minmax", "entropy", "percentile")
BIAS_CORRECTION_IMAGES = 64  # calibration inputs the bias correction averages over (the means settle well before)


def scope_patterns(keep_float) -> list[str]:
    """Module names -> regexes matching them as path components in ONNX ("/model/blocks.1/blocks.1.0/se/..."),
    OpenVINO (the ONNX names) and NNCF-torch ("blocks.1.0.se.conv_reduce/conv2d/0") node names alike."""
    return [rf"(^|.*[./]){re.escape(k)}([./].*|$)" for k in keep_float]


def matching_nodes(names, keep_float) -> list[str]:
    pats = [re.compile(p) for p in scope_patterns(keep_float)]
    return [n for n in names if any(p.match(n) for p in pats)]


def top_level_layers(names) -> list[str]:
    """The model's top-level modules as exported graphs name them, in order: "/model/conv_stem/Conv" -> "conv_stem",
    "/model/blocks/blocks.0/blocks.0.0/..." -> "blocks.0" (a Sequential's stages, the unit worth keeping float)."""
    out = []
    for n in names:
        m = re.match(r"^/model/([^/]+)/(?:(\1\.\d+)/)?", n)
        if m:
            out.append(m.group(2) or m.group(1))
    return list(dict.fromkeys(out))


def check_keep_float(names, keep_float, layers, what: str) -> None:
    """A keep_float entry that matches no node would quietly quantize everything it meant to keep (a typo such as
    "stem" for "conv_stem"): refuse it, naming the model's layers. names: node or module names; layers: the
    top-level ones to suggest."""
    names = list(names)
    unknown = [k for k in keep_float if not matching_nodes(names, (k,))]
    if unknown:
        raise ExportError(f"keep_float {unknown} names no layer of {what}; its top-level layers are "
                          f"{', '.join(layers) or '(none found)'} (sub-modules such as 'blocks.1.0' or 'conv_pw' match "
                          "too, as whole components of the module path)")


OVERFLOW_FIX = ("auto", "enable", "first_layer_only", "disable")


def resolve_overflow_fix(value: str, target_cpu: str | None = None) -> str:
    """INT8 weights in a 7-bit range where the target CPU's U8S8 kernels saturate (x86 without VNNI, see cpuinfo).

    "enable": every layer (ORT reduce_range; NNCF OverflowFix.ENABLE) - safe on any CPU, costs accuracy.
    "first_layer_only": NNCF's default (ORT: none). "disable": full 8-bit range. "auto": "enable" when the target CPU
    class saturates (x86-avx2), else "first_layer_only"; target_cpu None is this machine's class.
    """
    if value not in OVERFLOW_FIX:
        raise ExportError(f"overflow_fix={value!r}: use one of {', '.join(OVERFLOW_FIX)}")
    if value != "auto":
        return value
    from ..runtime.cpuinfo import resolve_target_cpu, target_saturates

    try:
        target = resolve_target_cpu(target_cpu)
    except EdgeclsError as exc:
        raise ExportError(str(exc)) from None
    return "enable" if target_saturates(target) else "first_layer_only"


def _target(target_cpu: str | None) -> str | None:
    from ..runtime.cpuinfo import resolve_target_cpu

    try:
        return resolve_target_cpu(target_cpu)
    except EdgeclsError as exc:
        raise ExportError(str(exc)) from None


def _batches(calib: np.ndarray, name: str):
    for i in range(len(calib)):
        yield {name: calib[i : i + 1]}


ORT_WEIGHTS = {
    "8-bit": "full-range int8 weights (on x86 without VNNI the Predictor runs them on ONNX Runtime's U8U8 kernels)",
    "7-bit": "7-bit weights everywhere (reduce_range): U8S8 kernels cannot saturate, at a cost in accuracy",
    "7-bit-gemm": "7-bit weights where the convolution runs as a GEMM (pointwise, dense: vpmaddubsw), 8-bit on "
                  "depthwise convolutions (few weights per channel, the most hurt by 7 bits)",
}
# saturating target? -> the weights overflow_fix "auto" gives. On x86 without VNNI 7-bit weights keep the fast U8S8
# kernels (8-bit ones need ONNX Runtime's slower U8U8 path there) and bias correction recovers what 7 bits lose
ORT_AUTO = {True: "7-bit", False: "8-bit"}


def ort_weights(overflow_fix: str, target_cpu: str | None, weights: str | None = None) -> str:
    """The ONNX Runtime weight form: `weights` when given, else from overflow_fix ("enable" -> 7-bit, "disable" and
    "first_layer_only" -> 8-bit, "auto" -> ORT_AUTO for the target CPU class)."""
    if weights is not None:
        if weights not in ORT_WEIGHTS:
            raise ExportError(f"ONNX Runtime weights={weights!r}: use one of {', '.join(ORT_WEIGHTS)}")
        return weights
    fix = resolve_overflow_fix(overflow_fix, target_cpu)
    if overflow_fix == "auto":
        from ..runtime.cpuinfo import target_saturates

        return ORT_AUTO[target_saturates(_target(target_cpu))]
    return "7-bit" if fix == "enable" else "8-bit"


def onnx_ptq(src: str | Path, dst: str | Path, spec: ModelSpec, calib: np.ndarray, *, method: str = "minmax",
             per_channel: bool = True, keep_float: tuple[str, ...] = (), op_types: tuple[str, ...] | None = None,
             overflow_fix: str = "auto", strict_keep_float: bool = True, target_cpu: str | None = None,
             weights: str | None = None, bias_correction: bool = True) -> ModelSpec:
    """INT8 QDQ ONNX: per-channel symmetric int8 weights, uint8 activations (the U8S8 kernels x86 VNNI runs fastest).

    The graph's own input normalization (uint8 -> float, outside the "/model/" scope) stays float: quantized, its
    full-resolution QLinearMul/QLinearAdd cost more than all the convolutions gain (measured: 2.6 ms of 11 ms).
    op_types: op types to quantize (default: ORT's list).
    target_cpu: the CPU class it is built for (cpuinfo.TARGET_CPUS; None: this machine's), recorded in the spec.
    weights: ORT_WEIGHTS; None: from overflow_fix and the target (ort_weights). overflow_fix "enable" is ORT's
    reduce_range (7-bit weights), what its docs advise for x86 without VNNI.
    bias_correction: take each convolution's weight-rounding shift out of its bias (bias_correction.py), measured on
    up to BIAS_CORRECTION_IMAGES of the calibration inputs: pretrained Lite0 with 7-bit weights kept the FP32 top-1
    on 70% of 120 photo crops without it, 88% with it (8-bit weights: 88-89%).
    keep_float: module names whose nodes stay float (e.g. ("conv_stem", "blocks.0"): the stem and first stage);
    strict_keep_float: a name matching no node is an ExportError (off only for the fallback ladder's generic names,
    such as "se" on a model without SE blocks).
    """
    q = require("onnxruntime.quantization", "onnx")
    if method not in ORT_METHODS:
        raise ExportError(f"calibration method {method!r} is not one of {', '.join(ORT_METHODS)}")
    import onnx

    name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    target = _target(target_cpu)
    form = ort_weights(overflow_fix, target, weights)
    fix = "enable" if form == "7-bit" else ("disable" if form == "8-bit" else "partial")

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = _batches(calib, name)

        def get_next(self):
            return next(self.it, None)

    prepped = Path(dst).with_suffix(".prep.onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ORT advises pre-processing; we do it just below
            q.shape_inference.quant_pre_process(str(src), str(prepped), skip_symbolic_shape=False)
        nodes = [n.name for n in onnx.load(str(prepped)).graph.node]
        if strict_keep_float:
            check_keep_float(nodes, keep_float, top_level_layers(nodes), Path(src).name)
        exclude = matching_nodes(nodes, keep_float)
        if spec.input.normalized_in_graph:
            exclude += [n for n in nodes if not n.startswith("/model/")]
        extra = {"WeightSymmetric": True, "ActivationSymmetric": False}
        if form == "7-bit-gemm":  # 8-bit weights on the depthwise convolutions only (per-tensor override)
            extra["TensorQuantOverrides"] = {w: [{"reduce_range": False}] for w in depthwise_weights(prepped)}
        q.quantize_static(
            str(prepped), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
            reduce_range=form != "8-bit", activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
            calibrate_method={"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
                              "percentile": q.CalibrationMethod.Percentile}[method],
            nodes_to_exclude=exclude, op_types_to_quantize=list(op_types) if op_types else None, extra_options=extra,
        )
        corrected = None
        if bias_correction:
            from .bias_correction import correct_biases

            corrected = correct_biases(prepped, dst, calib[:BIAS_CORRECTION_IMAGES])
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"ONNX Runtime quantize_static failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    finally:
        prepped.unlink(missing_ok=True)
        for p in Path(dst).parent.glob("*.onnx-augmented*"):  # calibration scratch ORT may leave behind
            p.unlink(missing_ok=True)
    params = {"tool": "onnxruntime.quantize_static", "format": "QDQ", "calibration_images": len(calib), "method": method,
              "per_channel": per_channel, "overflow_fix": fix, "target_cpu": target, "weight_form": form,
              "weights": f"int8 symmetric, {ORT_WEIGHTS[form]}", "activations": "uint8 asymmetric",
              "keep_float": list(keep_float), "float_nodes": len(exclude), "bias_correction": corrected}
    return _int8_spec(spec, "onnx", params, target)


def depthwise_weights(path: str | Path) -> list[str]:
    """The weight initializers of an ONNX graph's depthwise convolutions (group == input channels > 1)."""
    import onnx

    g = onnx.load(str(path)).graph
    shapes = {t.name: list(t.dims) for t in g.initializer}
    out = []
    for n in g.node:
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        w = shapes.get(n.input[1]) if n.op_type == "Conv" and len(n.input) > 1 else None
        if w and group > 1 and w[1] == 1:  # (out, in/group = 1, kh, kw)
            out.append(n.input[1])
    return out


def openvino_ptq(src: str | Path, dst: str | Path, spec: ModelSpec, calib: np.ndarray, *, preset: str = "mixed",
                 keep_float: tuple[str, ...] = (), fast_bias_correction: bool = True, overflow_fix: str = "auto",
                 strict_keep_float: bool = True, target_cpu: str | None = None) -> ModelSpec:
    """INT8 OpenVINO IR with NNCF PTQ. preset 'mixed': asymmetric activations, what hard-swish models need.
    overflow_fix: NNCF's own option (see resolve_overflow_fix; "auto" follows target_cpu, recorded in the spec).
    fast_bias_correction=False: NNCF's full bias correction (slower to build). keep_float, strict_keep_float: as in
    onnx_ptq (NNCF's ignored_scope)."""
    ov = require("openvino", "openvino")
    nncf = require("nncf", "compress")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    target = _target(target_cpu)
    fix = resolve_overflow_fix(overflow_fix, target)
    model = ov.Core().read_model(str(src))
    if strict_keep_float and keep_float:
        names = [op.get_friendly_name() for op in model.get_ordered_ops()]
        check_keep_float(names, keep_float, top_level_layers(names), Path(src).name)
    presets = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
    if preset not in presets:
        raise ExportError(f"NNCF preset {preset!r} is not one of {', '.join(presets)}")
    try:
        qmodel = nncf.quantize(
            model, nncf.Dataset(list(calib), lambda x: x[None]), preset=presets[preset], subset_size=len(calib),
            fast_bias_correction=fast_bias_correction,
            advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(fix)),
            ignored_scope=nncf.IgnoredScope(patterns=scope_patterns(keep_float), validate=False) if keep_float else None,
        )
    except Exception as exc:
        raise ExportError(f"NNCF quantization of the OpenVINO model failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    from ..exporters.openvino import save_ir

    save_ir(qmodel, dst, compress_to_fp16=False)
    params = {"tool": "nncf.quantize (OpenVINO)", "calibration_images": len(calib), "preset": preset,
              "fast_bias_correction": fast_bias_correction, "overflow_fix": fix, "target_cpu": target,
              "keep_float": list(keep_float)}
    return _int8_spec(spec, "openvino", params, target)


def openvino_from_qdq(src: str | Path, dst: str | Path, spec: ModelSpec, calib: np.ndarray, **ort_options) -> ModelSpec:
    """INT8 OpenVINO IR made from ONNX Runtime's Q/DQ graph of the float ONNX `src` (onnx_ptq with `ort_options`:
    its weight form and bias correction), converted by OpenVINO, whose low-precision transformations run each
    DequantizeLinear -> Conv -> QuantizeLinear as an int8 convolution. Measured on pretrained Lite0 where U8S8
    saturates: 7-bit bias-corrected Q/DQ kept the FP32 top-1 on 87% of 150 photo crops and ran 11.9 ms, NNCF's IR
    with its overflow fix 80% and 13.3 ms (FP32 20.1 ms), so it is OpenVINO's second form in the ladder."""
    from ..exporters.openvino import onnx_to_openvino

    dst = Path(dst)
    qdq = dst.with_name(dst.stem + ".qdq.onnx")
    try:
        q = onnx_ptq(src, qdq, spec, calib, **ort_options)
        vspec = onnx_to_openvino(qdq, q, dst)
    finally:
        qdq.unlink(missing_ok=True)
    art = {**vspec.artifact, "precision": "int8", "quantizer": "onnxruntime.quantize_static (QDQ) -> OpenVINO"}
    for k in ("float_layers",):
        if k in q.artifact:
            art[k] = q.artifact[k]
    return vspec.replace(artifact=art)


def publish_int8(fmt: str, staged: Path, final: Path, spec: ModelSpec) -> None:
    """Embed the INT8 spec, then move the files and the sidecar into place as export() does (the main file last)."""
    from ..exporters import FORMATS
    from ..runtime.artifacts import publish

    FORMATS[fmt].embed(staged, spec)
    publish(staged, final, spec)


def quantize_file(fmt: str, src: str | Path, dst: str | Path, spec: ModelSpec, calib: np.ndarray, *,
                  keep_float: tuple[str, ...] = (), method: str = "minmax", per_channel: bool = True,
                  overflow_fix: str = "auto", strict_keep_float: bool = True, target_cpu: str | None = None,
                  weights: str | None = None, fast_bias_correction: bool = True, bias_correction: bool = True,
                  quantizer: str = "nncf") -> ModelSpec:
    """PTQ of a float artifact (`fmt` "onnx" or "openvino") into `dst`, built in a staging folder, published whole.

    target_cpu: the CPU class it is for (x86-vnni, x86-avx2, arm64, "this"; None: this machine's), recorded as
    spec.target_cpu; overflow_fix "auto" follows it. weights (ONNX Runtime: ORT_WEIGHTS) and fast_bias_correction
    (OpenVINO) are the ladder's other forms; bias_correction (ONNX Runtime, on by default: onnx_ptq). quantizer
    (OpenVINO): "nncf", or "onnxruntime" (openvino_from_qdq: `src` must then be the float .onnx). keep_float: module names left in float (whole path components:
    "conv_stem", "blocks.0", "se"); a name that matches nothing is an ExportError naming the model's layers unless
    strict_keep_float=False."""
    from ..runtime.artifacts import staging

    dst = Path(dst)
    with staging(dst) as staged:  # carries the pid: a killed run's folder is cleared by the next one
        if fmt == "onnx":
            q = onnx_ptq(src, staged, spec, calib, method=method, keep_float=keep_float, per_channel=per_channel,
                         overflow_fix=overflow_fix, strict_keep_float=strict_keep_float, target_cpu=target_cpu,
                         weights=weights, bias_correction=bias_correction)
        elif fmt == "openvino" and quantizer == "onnxruntime":
            if Path(src).suffix.lower() != ".onnx":
                raise ExportError(f"quantizer='onnxruntime' makes the IR from ONNX Runtime's Q/DQ graph of the float ONNX; "
                                  f"{Path(src).name} is not one: give the .onnx export of the same model")
            q = openvino_from_qdq(src, staged, spec, calib, method=method, keep_float=keep_float, per_channel=per_channel,
                                  overflow_fix=overflow_fix, strict_keep_float=strict_keep_float, target_cpu=target_cpu,
                                  weights=weights, bias_correction=bias_correction)
        elif fmt == "openvino":
            if quantizer != "nncf":
                raise ExportError(f"quantizer={quantizer!r}: OpenVINO INT8 comes from 'nncf' or 'onnxruntime'")
            if not per_channel:
                raise ExportError("NNCF quantizes OpenVINO weights per channel always; per_channel=False is ONNX Runtime only")
            if weights is not None:
                raise ExportError("weights= picks ONNX Runtime's weight form; NNCF's is overflow_fix")
            q = openvino_ptq(src, staged, spec, calib, keep_float=keep_float, overflow_fix=overflow_fix,
                             strict_keep_float=strict_keep_float, target_cpu=target_cpu,
                             fast_bias_correction=fast_bias_correction)
        else:
            raise ExportError(f"post-training INT8 here covers onnx and openvino, not {fmt!r} (TFLite INT8 is an export precision)")
        _inherit_selfcheck(fmt, src, staged, q)
        publish_int8(fmt, staged, dst, q)
        return q


def _inherit_selfcheck(fmt: str, src: str | Path, staged: Path, spec: ModelSpec) -> None:
    """The float source's self-check inputs and float answers go with its INT8 version (judged by INT8 tolerances)."""
    from ..exporters.selfcheck import embed, openvino_graph_logits, qdq_graph_logits, read
    from ..runtime.runtimes import for_suffix
    from ..runtime.selfcheck import with_precision

    found = for_suffix(src)
    src_fmt = found.format if found is not None else fmt  # an OpenVINO INT8 may start from an .onnx
    blob = read(src, src_fmt)
    if blob is not None:
        graph = (qdq_graph_logits if fmt == "onnx" else openvino_graph_logits)(staged, blob, spec)
        embed(staged, fmt, with_precision(blob, "int8", graph))


def _int8_spec(spec: ModelSpec, fmt: str, params: dict, target_cpu: str | None) -> ModelSpec:
    art = {**spec.artifact, "format": fmt, "precision": "int8", "quantizer": params["tool"]}
    if params["keep_float"]:
        art["float_layers"] = len(params["keep_float"])
    return spec.replace(artifact=art, target_cpu=target_cpu).with_step("quantize", params)


__all__ = ["onnx_ptq", "openvino_ptq", "quantize_file", "publish_int8", "scope_patterns", "matching_nodes", "check_keep_float",
           "top_level_layers", "ORT_METHODS", "ORT_WEIGHTS", "ort_weights", "depthwise_weights", "openvino_from_qdq",
           "OVERFLOW_FIX", "resolve_overflow_fix"]
