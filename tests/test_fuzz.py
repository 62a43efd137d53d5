"""Fuzz the image decode path and the spec/metadata parser for a fixed budget: only typed errors come out.

Budgets (examples per test; EDGECLS_FUZZ_EXAMPLES scales them, e.g. 10x for a long local run):
  image files: 400 mutations of six real encoded photos (up to 32 flips/cuts/inserts of up to 256 bytes) or random
               bytes up to 64 KiB;
  spec JSON:   400 arbitrary byte/text strings up to 16 KiB; 300 corruptions of a real 1,000-label spec (up to 64
               byte edits); 200 structural edits (nesting up to 5,000 deep, huge numbers, long strings);
  spec dicts:  tests/test_spec.py, 300 examples of JSON trees up to 200 leaves.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edgecls import InputError, ModelSpec, SpecError
from edgecls.data.samples import sample_images
from edgecls.runtime.images import load_image


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(sample_images(("coffee",))["coffee"][::8, ::8]).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")}
SCALE = float(os.environ.get("EDGECLS_FUZZ_SCALE", 1))


def budget(n: int) -> int:
    return max(1, int(n * SCALE))


@st.composite
def mutated(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 32))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 256))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=256))
        if not data:
            break
    return bytes(data)


@pytest.mark.slow
@settings(max_examples=budget(400), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(mutated(), st.binary(max_size=65536)))
def test_decoding_mutated_files_gives_an_image_or_input_error(tmp_path, data):
    p = tmp_path / "img.bin"
    p.write_bytes(data)
    try:
        img, order = load_image(p, color=None)
    except InputError:
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and order == "RGB"


@settings(max_examples=budget(400), deadline=None)
@given(st.binary(max_size=16384) | st.text(max_size=16384))
def test_spec_parser_on_arbitrary_bytes(data):
    try:
        ModelSpec.from_json(data)
    except SpecError:
        pass


REAL_SPEC = (ModelSpec(arch="efficientnet_lite0", labels=tuple(f"class {i}" for i in range(1000)))
             .with_step("train", {"epochs": 3, "lr": 0.003, "keep_float": ["conv_stem", "se"]}, {"val_top1": 0.91})
             .with_step("export", {"format": "onnx", "opset": 17}, {"images": 11, "tolerance": None})
             .to_json().encode())


@settings(max_examples=budget(300), deadline=None)
@given(st.data())
def test_spec_parser_on_corrupted_real_spec(data):
    text = bytearray(REAL_SPEC)
    for _ in range(data.draw(st.integers(1, 64))):
        pos = data.draw(st.integers(0, len(text) - 1))
        text[pos] = data.draw(st.integers(0, 255))
    try:
        spec = ModelSpec.from_json(bytes(text))
    except SpecError:
        return
    assert json.loads(spec.to_json())["arch"]


@settings(max_examples=budget(200), deadline=None)
@given(st.data())
def test_spec_parser_on_structural_edits(data):
    """Valid JSON that is hostile: nesting thousands deep, huge integers and floats, long strings, wrong types."""
    d = json.loads(REAL_SPEC)
    where = data.draw(st.sampled_from(["metrics", "artifact", "labels", "arch", "temperature", "input", "lineage"]))
    kind = data.draw(st.sampled_from(["deep", "bigint", "bigfloat", "longstr", "null", "list"]))
    if kind == "deep":  # spliced in as text: building it as a Python object would itself hit the recursion limit
        depth = data.draw(st.integers(1, 5000))
        body = json.dumps({**d, where: None})
        text = body.replace(f'"{where}": null', f'"{where}": ' + "[" * depth + "]" * depth)
    else:
        value = {"bigint": lambda: 10 ** data.draw(st.integers(18, 4000)),
                 "bigfloat": lambda: 1e308 * data.draw(st.sampled_from([1, 10, -10])),
                 "longstr": lambda: "x" * data.draw(st.integers(0, 100_000)),
                 "null": lambda: None,
                 "list": lambda: [d.get(where)] * data.draw(st.integers(0, 3))}[kind]()
        text = json.dumps({**d, where: value})
    try:
        ModelSpec.from_json(text)
    except SpecError:
        return
