"""Fuzz the image decode path and the spec/metadata parser for a fixed budget: only typed errors come out."""

from __future__ import annotations

import io
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edgecls import InputError, ModelSpec, SpecError
from edgecls.images import load_image
from edgecls.samples import sample_images


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(sample_images(("coffee",))["coffee"][::8, ::8]).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")}


@st.composite
def mutated(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        if not data:
            break
    return bytes(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(mutated(), st.binary(max_size=512)))
def test_decoding_mutated_files_gives_an_image_or_input_error(tmp_path, data):
    p = tmp_path / "img.bin"
    p.write_bytes(data)
    try:
        img, order = load_image(p, color=None)
    except InputError:
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and order == "RGB"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_spec_parser_on_arbitrary_bytes(data):
    try:
        ModelSpec.from_json(data)
    except SpecError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_spec_parser_on_corrupted_real_spec(data):
    text = bytearray(ModelSpec(arch="a", labels=("x", "y")).to_json().encode())
    for _ in range(data.draw(st.integers(1, 5))):
        pos = data.draw(st.integers(0, len(text) - 1))
        text[pos] = data.draw(st.integers(32, 126))
    try:
        spec = ModelSpec.from_json(bytes(text))
    except SpecError:
        return
    assert json.loads(spec.to_json())["arch"]
