"""The C++ side (cpp/edgecls.hpp, examples/cpp/camera_app.cpp) against the Python Predictor, on the same artifacts.

The example is built in a temporary folder as README "In a C++ app" says (CMake, Debian's OpenCV 4.6, OpenVINO from
the pip wheel), then run on real photos (PNG: decoded identically on both sides), real JPEG photos (ants/bees) and
the frames of an MJPG 1080p video file, for FP32 (uint8 fused input and float input), INT8, open-set and
multi-label artifacts built here. Per image it must give the Predictor's top-1 (or "unknown"); its input tensor may
differ from the Predictor's by at most one grey level, and only where the last resize is OpenCV's bicubic, whose
Debian 4.6 and pip 5.0 builds round differently (every other step is bit-identical); identical input gives identical
logits. Bad files and specs exit 2 with one line. `pytest -s tests/test_cpp.py -k agreement` prints the table.

When the toolchain is missing the tests skip with the reason, except under `make test` on a machine where `make
install` could have installed it (root with apt-get): there they fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgecls
from edgecls.runtime import preprocess as pre
from edgecls.runtime import spec as spec_mod
from edgecls.runtime.predictor import UNKNOWN
from edgecls.runtime.scores import ood_score
from edgecls.runtime.spec import ModelSpec, OpenSet
from tools import cpp_build, shared_data

REPO = Path(__file__).resolve().parent.parent
HEADER = REPO / "cpp" / "edgecls.hpp"
THREADS = 2
TABLE: list[dict] = []  # agreement rows, printed by test_agreement_table


def _unavailable(reason: str):
    if shared_data.require_data() and cpp_build.can_install():
        pytest.fail(f"{reason} (make install adds the C++ toolchain on this machine: it should be here)")
    pytest.skip(reason)


def _build(target: str, tmp_path_factory) -> Path:
    problem = cpp_build.toolchain_problem()
    if problem:
        _unavailable(problem)
    try:
        return getattr(cpp_build, target)(tmp_path_factory.mktemp(f"build_{target}"))
    except cpp_build.BuildError as exc:
        if exc.stage == "configure":  # a library CMake cannot find: the toolchain, not the code
            _unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def camera_app(tmp_path_factory) -> Path:
    return _build("camera_app", tmp_path_factory)


@pytest.fixture(scope="session")
def spec_reader(tmp_path_factory) -> Path:
    return _build("parse_specs", tmp_path_factory)


# --- what the two sides see ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sources(photos, hymenoptera, tmp_path_factory) -> dict[str, list[Path] | Path]:
    """photos: the bundled photos as PNG; jpeg: every 6th ants/bees validation photo as its own JPEG file;
    video: an MJPG 1080p file of the photos and ants/bees frames (what a camera or a recording delivers)."""
    d = tmp_path_factory.mktemp("cpp_sources")
    pngs = []
    for name, rgb in photos.items():
        pngs.append(d / f"{name}.png")
        assert cv2.imwrite(str(pngs[-1]), np.ascontiguousarray(rgb[..., ::-1]))
    jpegs = sorted((hymenoptera / "val").rglob("*.jpg"))[::6]
    clip = d / "clip_1080p.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1920, 1080))
    assert w.isOpened(), "OpenCV cannot write MJPG here"
    frames = [np.ascontiguousarray(rgb[..., ::-1]) for rgb in photos.values()]
    frames += [cv2.imread(str(p)) for p in sorted((hymenoptera / "train").rglob("*.jpg"))[::20][:13]]
    for f in frames:
        w.write(cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_AREA))
    w.release()
    return {"photos": pngs, "jpeg": jpegs, "video": clip}


def _video_frames(clip: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def python_side(pred: edgecls.Predictor, source) -> list[tuple[np.ndarray, np.ndarray, edgecls.Prediction]]:
    """(input tensor, logits, prediction) per image, through the Predictor's own steps."""
    if isinstance(source, Path):  # a video: frames as pip's OpenCV decodes them, BGR
        inputs = [pred.preprocess(f, color="BGR") for f in _video_frames(source)]
    else:
        inputs = [pred.preprocess(str(p)) for p in source]
    out = []
    for x in inputs:
        logits = pred.infer(x)
        out.append((x, logits[0], pred.postprocess(logits)[0]))
    return out


def run_app(app: Path, model: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(app), str(model), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def threads_for(model: Path) -> int | None:
    """2 threads on both sides; ExecuTorch's pool keeps its default size (its C++ headers do not expose it)."""
    return None if model.suffix == ".pte" else THREADS


def cpp_side(app: Path, model: Path, source, dump: Path, *flags: str) -> list[tuple[np.ndarray, dict]]:
    """(input tensor, JSON answer) per image from camera_app."""
    dump.mkdir(parents=True, exist_ok=True)
    src = ["--video", source] if isinstance(source, Path) else [a for p in source for a in ("--image", p)]
    threads = ["--threads", THREADS] if threads_for(model) else []
    r = run_app(app, model, *threads, "--json", "--dump-inputs", dump, *flags, *src)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    return [(np.load(dump / f"{i}.npy"), row) for i, row in enumerate(rows)]


def grey_levels(a: np.ndarray, b: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """|a - b| of two input tensors in grey levels of the source pixels (float input: undo the normalization)."""
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    if spec.input.normalized_in_graph:
        return d
    shape = (1, -1, 1, 1) if spec.input.layout == "NCHW" else (1, 1, 1, -1)
    return d * 255.0 * np.asarray(spec.preprocess.std).reshape(shape)


def last_step_bicubic(h: int, w: int, spec: ModelSpec) -> bool:
    """Whether preprocessing an h x w image ends with OpenCV's bicubic resize (preprocess.fast_pixels' rule)."""
    p, inp = spec.preprocess, spec.input
    if p.interpolation != "bicubic":
        return False
    y0, x0, y1, x1 = pre.source_box(h, w, p, inp)
    rh, rw = y1 - y0, x1 - x0
    while rh >= pre.LAST_STEP_MAX * inp.height and rw >= pre.LAST_STEP_MAX * inp.width:
        rh, rw = rh // 2, rw // 2
    return (rh, rw) != (inp.height, inp.width) and max(rh / inp.height, rw / inp.width) < pre.LINEAR_FROM


def source_sizes(source) -> list[tuple[int, int]]:
    if isinstance(source, Path):
        return [f.shape[:2] for f in _video_frames(source)]
    return [cv2.imread(str(p)).shape[:2] for p in source]


# --- the artifacts ---------------------------------------------------------------------------------------------
def _gap_threshold(scores) -> float:
    """A threshold in the middle of the widest gap between the middle half of the scores: about half the images
    answer "unknown", and none sits near the threshold, so any difference in the answer is a real one."""
    s = np.sort(np.asarray(scores, np.float64))
    lo, hi = len(s) // 4, 3 * len(s) // 4
    i = lo + int(np.argmax(np.diff(s[lo:hi + 1])))
    return float((s[i] + s[i + 1]) / 2)


def _restamped(src: Path, dst: Path, spec: ModelSpec) -> Path:
    from edgecls.openset import restamp

    shutil.copy2(src, dst)
    shutil.copy2(src.with_suffix(".bin"), dst.with_suffix(".bin"))
    restamp(dst, spec)
    return dst


@pytest.fixture(scope="module")
def cpp_artifacts(artifacts, lite0, sources, tmp_path_factory) -> dict[str, Path]:
    """FP32 (fused uint8 NHWC input; float NCHW input), INT8 (NNCF PTQ), open-set copies with a calibration
    temperature and each open-set score, a multi-label copy, and the ONNX file (OpenVINO reads it in C++)."""
    import warnings

    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops

    model, spec = lite0
    d = tmp_path_factory.mktemp("cpp_artifacts")
    fp32 = d / "fp32.xml"
    shutil.copy2(artifacts["xml"], fp32)
    shutil.copy2(artifacts["xml"].with_suffix(".bin"), fp32.with_suffix(".bin"))
    out = {"fp32": fp32, "fp32_float_input": edgecls.export(model, spec, d / "fp32_float_input.xml", fuse_preprocess=False).path}
    with edgecls.Predictor(fp32, threads=THREADS) as p:
        calib = np.concatenate([p.preprocess(c, color="RGB") for c in photo_crops(32)])
        base = p.spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a smoke-scale calibration, on purpose
        quantize_file("openvino", fp32, d / "int8.xml", base, calib)
    out["int8"] = d / "int8.xml"
    for name, src, score, temperature in (("fp32_openset_msp", "fp32", "msp", 1.7), ("int8_openset_energy", "int8", "energy", 1.3),
                                          ("float_input_openset_max_logit", "fp32_float_input", "max_logit", 1.0)):
        with edgecls.Predictor(out[src], threads=THREADS) as p:
            logits = np.concatenate([[lg for _, lg, _ in python_side(p, s)] for s in sources.values()])
            s = ood_score(logits, score, temperature)
            spec_os = p.spec.replace(temperature=temperature, open_set=OpenSet(score=score, threshold=_gap_threshold(s)))
        out[name] = _restamped(out[src], d / f"{name}.xml", spec_os)
    # thresholds at logits ~6 and ~7 (ImageNet logits as multi-label scores): about 2 labels per image, some with none
    ml = base.replace(task="multilabel", thresholds=tuple(0.999 if i % 2 else 0.9975 for i in range(base.num_classes)))
    out["fp32_multilabel"] = _restamped(fp32, d / "fp32_multilabel.xml", ml)
    out["onnx"] = artifacts["onnx"]
    return out


# --- agreement ---------------------------------------------------------------------------------------------------
CASES = ["fp32", "fp32_float_input", "int8", "fp32_openset_msp", "int8_openset_energy", "float_input_openset_max_logit",
         "fp32_multilabel", "onnx", "pte", "pte_int8"]


# Where the two sides run different builds of a runtime, identical input gives logits this close, not identical:
# ONNX (Python: ONNX Runtime; C++: OpenVINO's ONNX reader) and ExecuTorch (Python: the pybindings extension with its own
# runtime and XNNPACK; C++: the wheel's libexecutorch.so and XNNPACK delegate library)
CROSS_BUILD = {"onnx": 1e-3, "pte": 1e-3, "pte_int8": 1e-3}


def _artifact(request, name: str) -> Path:
    if name.startswith("pte"):  # ExecuTorch: camera_app runs .pte when the executorch wheel is installed
        if cpp_build.executorch_cmake_dir() is None:
            pytest.skip("ExecuTorch is not installed (pip install 'edgecls[executorch]'): camera_app is built without .pte support")
        return request.getfixturevalue("executorch_artifacts")[name]
    return request.getfixturevalue("cpp_artifacts")[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_cpp_agrees_with_python(request, camera_app, sources, tmp_path, name):
    path = _artifact(request, name)
    with edgecls.Predictor(path, threads=threads_for(path), reject=True if "openset" in name else None) as pred:
        spec = pred.spec
        for set_name, source in sources.items():
            py = python_side(pred, source)
            cc = cpp_side(camera_app, path, source, tmp_path / set_name)
            assert len(cc) == len(py) > 0, (set_name, len(cc), len(py))
            sizes = source_sizes(source)
            row = {"artifact": name, "images": set_name, "n": len(py), "top1": 0, "answers": 0, "unknown": 0, "near": 0,
                   "max_logit_diff": 0.0, "max_pixel_diff": 0.0, "values_differing": 0.0, "labels": 0, "labels_differing": 0}
            for (x, logits, p), (cx, c), (h, w) in zip(py, cc, sizes):
                assert cx.shape == x.shape and cx.dtype == x.dtype
                levels = grey_levels(cx, x, spec)
                # one grey level at most, and only where the last resize is OpenCV's bicubic (4.6 vs 5.0 rounding)
                assert levels.max() <= 1.0 + 1e-3, (set_name, c["source"], levels.max())
                if not last_step_bicubic(h, w, spec):
                    assert levels.max() < 1e-3, (set_name, c["source"], (h, w), levels.max())
                dz = float(np.abs(np.asarray(c["logits"], np.float64) - logits).max())
                if np.array_equal(cx, x):  # same runtime library, same input: the same logits, exactly
                    assert dz <= CROSS_BUILD.get(name, 0.0), (set_name, c["source"], dz)
                row["max_logit_diff"] = max(row["max_logit_diff"], dz)
                row["max_pixel_diff"] = max(row["max_pixel_diff"], float(levels.max()))
                row["values_differing"] = max(row["values_differing"], float((levels > 1e-3).mean()))
                row["near"] += _same_answer(c, p, logits, dz, spec, pred.open_set)
                row["top1"] += c["topk"][0][0] == p.topk[0].index
                row["answers"] += (c["index"], c["known"]) == (p.index, p.known)
                row["unknown"] += not p.known and not c["known"]
                if spec.multilabel:
                    row["labels"] += len(p.labels)
                    row["labels_differing"] += _same_labels(c, p, logits, dz, spec)
            assert row["max_logit_diff"] < 0.5, row
            TABLE.append(row)
    rows = [r for r in TABLE if r["artifact"] == name]
    total = sum(r["n"] for r in rows)
    # most answers are decided, not waved through (INT8 energy scores crowd near the threshold: 9 of 61 were this close)
    assert sum(r["near"] for r in rows) <= 0.25 * total, rows
    if "openset" in name:  # the threshold splits the images: both answers are checked
        assert 0 < sum(r["unknown"] for r in rows) < total, rows


def _same_answer(c: dict, p, logits: np.ndarray, dz: float, spec: ModelSpec, open_set: OpenSet | None) -> bool:
    """The C++ answer is the Predictor's: the same top class and, with rejection, "unknown" for the same images, with
    scores within what the two sides' logit difference dz can move them (a softmax probability by at most dz / 2T,
    max_logit and energy by at most dz). Where dz could reorder the top two classes or carry the open-set score across
    the threshold, the answer may differ; returns whether this image was that close (then only the bounds hold)."""
    t = spec.temperature
    z = np.sort(logits.astype(np.float64))[::-1]
    near_tie = dz > 0 and z[0] - z[1] <= 2 * dz  # identical logits (dz 0) answer identically, exact ties included
    bound = dz / (2 * t) + 1e-9 if not spec.multilabel else dz / 4 + 1e-9  # sigmoid's slope is at most 1/4
    assert abs(c["score"] - p.score) <= bound, (c["source"], c["score"], p.score, dz)
    if not near_tie:
        assert c["topk"][0][0] == p.topk[0].index, (c["source"], c["topk"][:2], p.topk[:2])
    near_threshold = False
    if open_set is not None:
        ood_bound = bound if open_set.score == "msp" else dz + 1e-9
        assert abs(c["ood_score"] - p.ood_score) <= ood_bound, (c["source"], c["ood_score"], p.ood_score, dz)
        near_threshold = dz > 0 and abs(p.ood_score - open_set.threshold) <= ood_bound
        if not near_threshold:
            assert c["known"] == p.known, (c["source"], c["ood_score"], p.ood_score, open_set.threshold)
    else:
        assert c["known"] and c["ood_score"] is None
    assert (c["index"], c["label"]) == ((c["topk"][0][0], c["topk"][0][1]) if c["known"] else (-1, UNKNOWN))
    if not (near_tie or near_threshold):
        assert (c["index"], c["known"]) == (p.index, p.known), (c["source"], c["label"], p)
    return bool(near_tie or near_threshold)


def _same_labels(c: dict, p, logits: np.ndarray, logit_diff: float, spec: ModelSpec) -> int:
    """Multi-label: the same labels on both sides, except those whose sigmoid lies within what the logit difference
    can move it (slope <= 1/4) of their threshold; returns how many labels differ."""
    t = np.asarray(spec.label_thresholds)
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    near = np.abs(probs - t) <= 0.25 * logit_diff + 1e-9
    got = {t_[0] for t_ in c["labels"]}
    want = {x.index for x in p.labels}
    assert {i for i in got ^ want if not near[i]} == set(), (c["source"], sorted(got ^ want))
    assert [t_[2] for t_ in c["labels"]] == sorted((t_[2] for t_ in c["labels"]), reverse=True)
    return len(got ^ want)


@pytest.mark.slow
def test_agreement_table(camera_app):
    """Prints the agreement table of the runs above (pytest -s); fails when they did not all run."""
    done = {r["artifact"] for r in TABLE}
    want = {c for c in CASES if not c.startswith("pte") or cpp_build.executorch_cmake_dir()}
    if done != want:
        pytest.skip(f"run with the agreement tests (missing: {sorted(want - done)})")
    print("\n| artifact | images | n | top-1 equal | answer equal | unknown (both) | near a tie or the threshold | "
          "max abs logit diff | max pixel diff (grey levels) | values differing (max per image) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in TABLE:
        print(f"| {r['artifact']} | {r['images']} | {r['n']} | {r['top1']}/{r['n']} | {r['answers']}/{r['n']} | {r['unknown']} | "
              f"{r['near']} | {r['max_logit_diff']:.4f} | {r['max_pixel_diff']:.0f} | {100 * r['values_differing']:.1f}% |")
    for r in (r for r in TABLE if r["labels"]):
        print(f"multi-label {r['images']}: {r['labels']} labels given by Python, {r['labels_differing']} differing in C++")


@pytest.mark.slow
def test_readme_core_compiles_and_classifies_the_video(camera_app, cpp_artifacts, sources, tmp_path_factory):
    """README's C++ block, built as printed, gives camera_app's answers on the video."""
    exe = _build("readme_core", tmp_path_factory)
    r = subprocess.run([str(exe), str(cpp_artifacts["fp32"]), str(sources["video"])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "efficientnet_lite0, 1000 classes"
    labels = [ln.rsplit(" ", 3)[0] for ln in lines[1:] if not ln.startswith("  ")]
    app = run_app(camera_app, cpp_artifacts["fp32"], "--json", "--video", sources["video"])
    assert labels == [json.loads(x)["label"] for x in app.stdout.splitlines()]
    assert sum(ln.startswith("  ") for ln in lines) == 5 * len(labels)  # the top-5 of each frame


# --- bad files and specs: exit 2, one line -------------------------------------------------------------------------
def _xml_text(path: Path) -> str:
    return path.read_text()


def _top_level_spec(xml: str) -> re.Match:
    m = re.search(r'\n\t\t<edgecls\.spec value="[^"]*" />', xml)  # rt_info's own entry (under it, "framework" holds the ONNX one)
    assert m, "the .xml has no top-level edgecls.spec entry"
    return m


def _copy_xml(src: Path, dst: Path, text: str | None = None) -> Path:
    shutil.copy2(src.with_suffix(".bin"), dst.with_suffix(".bin"))
    dst.write_text(text if text is not None else src.read_text())
    return dst


@pytest.mark.slow
def test_damaged_files_and_specs_exit_2_with_one_line(camera_app, artifacts, sources, tmp_path):
    xml = artifacts["xml"]
    text = _xml_text(xml)
    img = str(sources["photos"][1])
    spec = ModelSpec.from_json(Path(str(xml) + ".json").read_bytes())

    def fails(model, pattern, *args, src=("--image", img)):
        r = run_app(camera_app, model, *args, *src, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("camera_app: error: "), (model, r.returncode, r.stderr)
        assert re.search(pattern, lines[0]), (pattern, lines[0])
        return lines[0]

    fails(tmp_path / "missing.xml", r"model file not found: .*missing\.xml")
    lone = tmp_path / "lone.xml"
    lone.write_text(text)
    fails(lone, r"needs its weights file .*lone\.bin")
    cut = _copy_xml(xml, tmp_path / "cut.xml", text[: len(text) // 2])
    fails(cut, r"OpenVINO cannot read .*cut\.xml .*truncated, corrupt or mismatched")
    flipped = _copy_xml(xml, tmp_path / "flipped.xml")
    data = bytearray(flipped.with_suffix(".bin").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    flipped.with_suffix(".bin").write_bytes(data)
    fails(flipped, r"flipped\.bin is not the weights file .* \(checksum mismatch\)")
    short = _copy_xml(xml, tmp_path / "short.xml")
    short.with_suffix(".bin").write_bytes(data[: len(data) // 3])
    fails(short, r"short\.(xml|bin)")
    # a spec from a future schema version, in rt_info
    m = _top_level_spec(text)
    future = m.group(0).replace("&quot;schema_version&quot;: 1", "&quot;schema_version&quot;: 2")
    assert future != m.group(0)
    fails(_copy_xml(xml, tmp_path / "future.xml", text.replace(m.group(0), future)),
          r"schema_version 2 is newer than this edgecls C\+\+ reader supports \(1\)")
    # no spec inside: the sidecar is read; none, or another model's, is refused
    bare = _copy_xml(xml, tmp_path / "bare.xml", text.replace(m.group(0), ""))
    fails(bare, r"bare\.xml carries no edgecls spec .* no sidecar .*bare\.xml\.json")
    Path(str(bare) + ".json").write_text(spec.to_json())
    ok = run_app(camera_app, bare, "--json", "--image", img)
    assert ok.returncode == 0 and json.loads(ok.stdout)["label"] == "espresso", ok.stderr
    Path(str(bare) + ".json").write_text(spec.replace(labels=tuple(f"c{i}" for i in range(10))).to_json())
    fails(bare, r"outputs 1000 classes but the spec has 10 labels; the spec belongs to another model")
    other = tmp_path / "other.json"
    other.write_text(spec.replace(input=spec.input.replace(height=240, width=240)).to_json())
    fails(xml, r"spec says input NHWC \(240, 240, 3\) but the model takes \(1, 224, 224, 3\)", "--spec", other)
    other.write_text(spec.to_json()[:500])
    fails(xml, r"other\.json: spec is not valid JSON", "--spec", other)
    # bad sources and options
    fails(xml, r"image file not found: .*nothing\.jpg", src=("--image", tmp_path / "nothing.jpg"))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    fails(xml, r"junk\.jpg is not an image file OpenCV can read", src=("--image", junk))
    fails(xml, r"cannot open video source .*nothing\.avi", src=("--video", tmp_path / "nothing.avi"))
    (tmp_path / "junk.avi").write_bytes(b"RIFF not a video" * 100)
    fails(xml, r"(cannot open video source|gave no frames).*junk\.avi", src=("--video", tmp_path / "junk.avi"))
    onnx = tmp_path / "cut.onnx"
    onnx.write_bytes(artifacts["onnx"].read_bytes()[:100_000])
    fails(onnx, r"OpenVINO cannot read .*cut\.onnx")
    fails(xml, r"--threads takes an integer >= 1, got 'two'", "--threads", "two")
    fails(tmp_path / "model.tflite", r"OpenVINO runs an edgecls \.xml")


@pytest.mark.slow
def test_damaged_pte_exit_2_with_one_line(camera_app, request, sources, tmp_path):
    pte = _artifact(request, "pte")
    img = ("--image", str(sources["photos"][1]))

    def fails(model, pattern):
        r = run_app(camera_app, model, *img, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("camera_app: error: "), (model, r.returncode, r.stderr)
        assert re.search(pattern, lines[0]), (pattern, lines[0])

    data = pte.read_bytes()
    for n in (0, 6, 1000, len(data) // 2, len(data) - 100):
        (tmp_path / f"cut{n}.pte").write_bytes(data[:n])
        fails(tmp_path / f"cut{n}.pte", rf"cut{n}\.pte (is not an ExecuTorch program|\(.*\); the file is truncated)")
    flipped = bytearray(data)
    flipped[len(data) // 3 : len(data) // 3 + 256] = bytes(256)
    (tmp_path / "flipped.pte").write_bytes(bytes(flipped))
    r = run_app(camera_app, tmp_path / "flipped.pte", *img, timeout=120)  # zeroed weights may still load: no crash either way
    assert r.returncode in (0, 2) and len(r.stderr.strip().splitlines()) <= 1, (r.returncode, r.stderr)
    (tmp_path / "model.pte").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(100))
    fails(tmp_path / "model.pte", r"is a LiteRT/TFLite model \(TFL3\); rename it to \.tflite")
    fails(tmp_path / "missing.pte", r"model file not found: .*missing\.pte")
    ok = run_app(camera_app, pte, "--json", *img)
    assert ok.returncode == 0 and json.loads(ok.stdout)["label"] == "espresso" and ok.stderr == "", ok.stderr
    r = run_app(camera_app, pte, "--threads", "2", *img)
    assert r.returncode == 2 and "thread pool" in r.stderr


# --- the spec reader alone: hostile and corrupted specs, next to Python's -------------------------------------------
def _hostile(spec: dict) -> dict[str, tuple[str | bytes, str]]:
    """name -> (file content, the pattern the C++ error must show). Each one Python's ModelSpec.from_json refuses too."""
    def edit(**changes):
        d = json.loads(json.dumps(spec))
        for path, value in changes.items():
            node, *keys = path.split("__")
            target = d
            for k in [node, *keys][:-1]:
                target = target[k]
            if value is _DROP:
                del target[[node, *keys][-1]]
            else:
                target[[node, *keys][-1]] = value
        return json.dumps(d)

    deep = "[" * 100_000 + "]" * 100_000
    return {
        "not json": ("{'arch': 'x'}", r"not valid JSON"),
        "truncated": (json.dumps(spec)[:1000], r"not valid JSON"),
        "array": ("[1, 2]", r"must be a JSON object"),
        "nested 100000 deep": ('{"schema_version": 1, "arch": "x", "labels": ["a"], "metrics": {"x": ' + deep + "}}", r"nested more than"),
        "over 16 MiB": ('{"schema_version": 1, "arch": "' + "x" * (17 << 20) + '"}', r"over the 16777216 limit"),
        "no schema_version": (edit(schema_version=_DROP), r"no 'schema_version'"),
        "future schema_version": (edit(schema_version=2), r"schema_version 2 is newer"),
        "schema_version as text": (edit(schema_version="1"), r"schema_version must be an integer"),
        "schema_version 0": (edit(schema_version=0), r"schema_version is 0, out of range"),
        "no labels": (edit(labels=_DROP), r"required field `labels` is missing"),
        "empty labels": (edit(labels=[]), r"has 0 labels"),
        "label with newline": (edit(labels=["a\nb"] + spec["labels"][1:]), r"control character"),
        "duplicate labels": (edit(labels=["x", "x"] + spec["labels"][2:]), r"duplicates"),
        "label too long": (edit(labels=["x" * 513] + spec["labels"][1:]), r"labels\[0\] must hold 1 to 512"),
        "height 0": (edit(input__height=0), r"input\.height is 0, out of range"),
        "height huge": (edit(input__height=10**12), r"input\.height is 1000000000000, out of range"),
        "height float": (edit(input__height=224.0), r"input\.height must be an integer, got a float"),
        "int8 input": (edit(input__dtype="int8"), r"input\.dtype is `int8`; choose one of"),
        "uint8 not normalized in graph": (edit(input__normalized_in_graph=False), r"needs normalized_in_graph=true"),
        "2 channels": (edit(input__channels=2), r"input\.channels is 2"),
        "unknown input field": (edit(input__colour="RGB"), r"unknown field `colour`"),
        "unknown top field": (edit(labelz=["a"]), r"unknown field `labelz`"),
        "crop_pct 2": (edit(preprocess__crop_pct=2), r"crop_pct is 2, out of range"),
        "std 0": (edit(preprocess__std=[0.5, 0.0, 0.5]), r"std\[1\] is 0, out of range"),
        "mean of 2": (edit(preprocess__mean=[0.5, 0.5], preprocess__std=[0.5, 0.5]), r"mean has 2 values but input\.channels=3"),
        "mean and std differ": (edit(preprocess__mean=[0.5]), r"same length"),
        "interpolation lanczos": (edit(preprocess__interpolation="lanczos"), r"choose one of nearest, bilinear, bicubic, area"),
        "temperature 0": (edit(temperature=0), r"temperature is 0, out of range"),
        "temperature huge": (edit(temperature=1e300), r"temperature is 1e\+300, out of range"),
        "msp threshold 1.5": (edit(open_set={"score": "msp", "threshold": 1.5}), r"out of range for score 'msp'"),
        "open_set score x": (edit(open_set={"score": "x", "threshold": 0.5}), r"open_set\.score is `x`"),
        "open_set without threshold": (edit(open_set={"score": "msp"}), r"open_set is incomplete"),
        "thresholds on multiclass": (edit(thresholds=[0.5] * len(spec["labels"])), r"task is 'multiclass'"),
        "thresholds too few": (edit(task="multilabel", thresholds=[0.5]), r"thresholds has 1 values for 1000 labels"),
        "multilabel with open_set": (edit(task="multilabel", open_set={"score": "msp", "threshold": 0.5}), r"remove open_set"),
        "task x": (edit(task="x"), r"spec\.task is `x`"),
        "metrics a list": (edit(metrics=[1]), r"spec\.metrics must be an object, got an array"),
        "huge number": ('{"schema_version": 1, "arch": "x", "labels": ["a"], "temperature": 1e999}', r"temperature|not valid JSON"),
    }


_DROP = object()


@pytest.mark.slow
def test_spec_reader_refuses_what_python_refuses(spec_reader, artifacts, tmp_path):
    spec = json.loads(Path(str(artifacts["xml"]) + ".json").read_text())
    cases = _hostile(spec)
    files = []
    for i, (name, (text, _)) in enumerate(cases.items()):
        files.append(tmp_path / f"{i}.json")
        files[-1].write_text(text)
    valid = {  # and what Python reads, C++ reads
        "the exported spec": json.dumps(spec),
        "minimal": json.dumps({"schema_version": 1, "arch": "x", "labels": ["a", "b"], "input": {"channels": 1},
                               "preprocess": {"mean": [0.5], "std": [0.25]}}),
        "multilabel": json.dumps({**spec, "task": "multilabel", "thresholds": [0.3] * 1000}),
        "open set": json.dumps({**spec, "open_set": {"score": "energy", "threshold": -3.5, "coverage": 0.9, "n": 40}}),
        "unicode labels": json.dumps({**spec, "labels": ["é" * 512] + spec["labels"][1:]}),
    }
    for i, text in enumerate(valid.values()):
        files.append(tmp_path / f"valid{i}.json")
        files[-1].write_text(text)
    rows = _parse(spec_reader, files)
    for (name, (text, pattern)), row in zip(cases.items(), rows):
        with pytest.raises(edgecls.SpecError):
            ModelSpec.from_json(text)
        assert not row["ok"] and "unexpected" not in row, (name, row)
        assert re.search(pattern, row["error"]) and "\n" not in row["error"], (name, pattern, row["error"])
    for (name, text), row in zip(valid.items(), rows[len(cases):]):
        assert row["ok"] and row["labels"] == len(ModelSpec.from_json(text).labels), (name, row)


@pytest.mark.slow
def test_spec_reader_survives_corrupted_specs(spec_reader, artifacts, tmp_path):
    """Truncations and byte changes of a real spec: the reader answers every one (a spec or an edgecls error), never
    crashes; whatever Python accepts, C++ accepts (C++ reads fewer fields, so it may accept a corruption inside
    lineage or metrics that Python refuses)."""
    text = Path(str(artifacts["xml"]) + ".json").read_bytes()
    rng = np.random.default_rng(28)
    variants = [text[: int(n)] for n in rng.integers(0, len(text), 60)]
    for _ in range(240):
        b = bytearray(text)
        for pos in rng.integers(0, len(b), int(rng.integers(1, 4))):
            b[pos] = int(rng.choice([ord(c) for c in '{}[]",:0123456789.eE-tfn \\']) if rng.random() < 0.7 else rng.integers(0, 256))
        variants.append(bytes(b))
    files = []
    for i, v in enumerate(variants):
        files.append(tmp_path / f"{i}.json")
        files[-1].write_bytes(v)
    rows = _parse(spec_reader, files)
    assert len(rows) == len(variants)
    python_ok = 0
    for v, row in zip(variants, rows):
        assert "unexpected" not in row and (row["ok"] or "\n" not in row["error"]), row
        try:
            ModelSpec.from_json(v)
        except edgecls.SpecError:
            continue
        python_ok += 1
        assert row["ok"], (row, v[:200])
    assert 0 < python_ok < len(variants)  # both kinds occurred


def _parse(reader: Path, files: list[Path]) -> list[dict]:
    r = subprocess.run([str(reader), *map(str, files)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return [json.loads(line) for line in r.stdout.splitlines()]


# --- fast: what the C++ side claims, before anything is built ---------------------------------------------------------------
def test_cpp_reader_knows_every_spec_field():
    """edgecls.hpp's field lists, choices and bounds are spec.py's: a field added in Python and not in C++ (or a
    changed bound) fails here, before any C++ is built."""
    src = HEADER.read_text()
    known = {m.group(1): set(re.findall(r'"(\w+)"', m.group(2)))
             for m in re.finditer(r'only_known\(\w+, "(?:spec\.)?(\w+)", \{([^}]*)\}\)', src)}
    assert known == {
        "spec": set(ModelSpec.__struct_fields__), "input": set(spec_mod.InputSpec.__struct_fields__),
        "preprocess": set(spec_mod.Preprocess.__struct_fields__), "open_set": set(spec_mod.OpenSet.__struct_fields__),
    }
    choices = {m.group(1): tuple(re.findall(r'"([\w-]+)"', m.group(2)))
               for m in re.finditer(r'choice\([^,]+, "[\w.]*?\.?(\w+)", \{([^}]*)\}\)', src)}
    assert {k: set(v) for k, v in choices.items()} == {
        "layout": set(spec_mod.LAYOUTS), "dtype": set(spec_mod.DTYPES), "resize_mode": set(spec_mod.RESIZE_MODES),
        "interpolation": set(spec_mod.INTERPOLATIONS), "color": set(spec_mod.COLORS), "task": set(spec_mod.TASKS),
        "score": set(spec_mod.SCORE_NAMES), "target_cpu": set(spec_mod.TARGET_CPU_NAMES)}
    consts = dict(re.findall(r"inline constexpr (?:int|std::size_t|long long) (k\w+) = ([^;]+);", src))
    assert consts["kSchemaVersion"] == str(spec_mod.SCHEMA_VERSION)
    assert consts["kMaxSpecBytes"] == "16u << 20" and spec_mod.MAX_SPEC_BYTES == 16 << 20
    assert (int(consts["kMaxLabels"]), int(consts["kMaxLabelChars"]), int(consts["kMaxSide"]), int(consts["kMaxBatch"])) == (
        spec_mod.MAX_LABELS, spec_mod.MAX_LABEL_CHARS, spec_mod.MAX_SIDE, spec_mod.MAX_BATCH)
    assert f'kSpecKey = "{spec_mod.SPEC_KEY}"' in src and f'kUnknown = "{UNKNOWN}"' in src
    assert re.search(rf"kLastStepMax = {pre.LAST_STEP_MAX};", src) and re.search(rf"kLinearFrom = {pre.LINEAR_FROM};", src)


def test_make_install_adds_the_packages_the_build_needs():
    makefile = (REPO / "Makefile").read_text()
    declared = re.search(r"^CPP_PACKAGES := (.+)$", makefile, re.M).group(1).split()
    assert tuple(declared) == cpp_build.CPP_PACKAGES
    assert re.search(r"^install: .*\bcpp-deps\b", makefile, re.M)
