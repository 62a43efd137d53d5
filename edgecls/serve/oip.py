"""The Open Inference Protocol (KServe v2, what `tritonclient` speaks) for a classifier: request parsing and answers.

Inputs (a request gives exactly one):
    image        UINT8 [N, H, W, C] (or [H, W, C]): decoded frames, RGB unless the request's parameter `color` is
                 "BGR"; any size, preprocessed by the artifact's spec exactly as Predictor.predict(frame) does
    image_bytes  BYTES [N]: encoded JPEG / PNG / WebP files (binary data, or JSON {"b64": ...} / base64 strings)
Outputs (all three unless the request names some):
    scores       FP32 [N, classes]: calibrated probabilities (softmax at the spec's temperature; sigmoid per label
                 for a multi-label model)
    logits       FP32 [N, classes]
    label        BYTES [N]: the top class ("unknown" when the server rejects open-set images)
Extensions: binary tensor data (the `Inference-Header-Content-Length` header; what tritonclient sends by default),
classification (an output's `classification: k` parameter answers k strings "score:index:label"), the request
parameter `timeout` in microseconds (Triton's), and the model repository's load (a hot swap, see models.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import RequestError
from ..version import package_version

OUTPUTS = ("scores", "logits", "label")
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]


@dataclass(frozen=True)
class Wanted:
    name: str
    binary: bool
    classification: int = 0


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    images: list  # encoded bytes, or (HxWxC uint8 frame, color)
    outputs: list[Wanted]
    timeout_s: float | None


def bad(message: str, status: int = 400) -> RequestError:
    return RequestError(status, message)


def _int(value: Any, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad(f"{what} must be a whole number >= {low}, got {value!r}")
    return value


def _bytes_elements(raw: bytes, what: str) -> list[bytes]:
    """A BYTES tensor in binary form: each element a 4-byte little-endian length and that many bytes."""
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise bad(f"{what}: the BYTES data ends inside an element's 4-byte length")
        (n,) = struct.unpack_from("<I", raw, i)
        if i + 4 + n > len(raw):
            raise bad(f"{what}: an element says {n} bytes but the data ends first")
        out.append(raw[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def _b64(item: Any, what: str) -> bytes:
    text = item.get("b64") if isinstance(item, dict) else item
    if not isinstance(text, str):
        raise bad(f"{what}: JSON image elements are base64 strings or {{\"b64\": \"...\"}}; for raw bytes use the "
                  "binary tensor extension")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{what}: an element is not valid base64") from None


def parse(body: bytes, header_length: str | None, *, channels: int, max_images: int, max_pixels: int) -> InferRequest:
    """An infer request body (JSON, or JSON + binary tensors) -> InferRequest; RequestError(400) saying what is wrong."""
    binary = b""
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise bad(f"Inference-Header-Content-Length {header_length[:20]!r} is not a byte count within the body "
                      f"({len(body)} bytes)")
        n = int(header_length)
        body, binary = body[:n], body[n:]
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the request is not JSON ({exc}); send {{\"inputs\": [...]}} (binary tensors after it, with "
                  "Inference-Header-Content-Length)") from None
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list) or len(req["inputs"]) != 1:
        raise bad("give exactly one input: 'image' (UINT8 [N, H, W, C] frames) or 'image_bytes' (BYTES [N] JPEG/PNG/WebP "
                  "files)")
    params = req.get("parameters") or {}
    if not isinstance(params, dict):
        raise bad("parameters must be an object")
    inp = req["inputs"][0]
    if not isinstance(inp, dict):
        raise bad("an input must be an object with name, datatype, shape and data")
    name, dtype, shape = inp.get("name"), inp.get("datatype"), inp.get("shape")
    if not isinstance(shape, list) or not shape:
        raise bad(f"input {name!r}: shape must be a list of sizes")
    shape = [_int(s, f"input {name!r} shape") for s in shape]
    iparams = inp.get("parameters") or {}
    if not isinstance(iparams, dict):
        raise bad(f"input {name!r}: parameters must be an object")
    size = iparams.get("binary_data_size")
    if size is not None:
        size = _int(size, f"input {name!r} binary_data_size")
        if size != len(binary):
            raise bad(f"input {name!r} says {size} bytes of binary data, the body carries {len(binary)} after the JSON")
        raw = binary
    elif binary:
        raise bad("the body carries binary data after the JSON but the input has no binary_data_size")
    elif "data" not in inp:
        raise bad(f"input {name!r} has no data")
    color = iparams.get("color", params.get("color", "RGB"))
    if color not in ("RGB", "BGR"):
        raise bad(f"color={color!r}: frames are 'RGB' (default) or 'BGR' (OpenCV)")

    if name == "image":
        if dtype != "UINT8":
            raise bad(f"input 'image' is UINT8 frames, not {dtype}")
        if len(shape) == 3:
            shape = [1, *shape]
        if len(shape) != 4 or shape[3] not in ((1, 3) if channels == 1 else (3,)) or 0 in shape:
            raise bad(f"input 'image' has shape {shape}; send [N, H, W, {channels}] uint8 frames")
        if shape[1] * shape[2] > max_pixels:
            raise bad(f"frames of {shape[2]}x{shape[1]} are over the {max_pixels:,}-pixel limit; downscale them", 413)
        want = int(np.prod(shape))
        if size is not None:
            if len(raw) != want:
                raise bad(f"input 'image' shape {shape} needs {want} bytes, got {len(raw)}")
            frames = np.frombuffer(raw, np.uint8).reshape(shape)
        else:
            try:
                a = np.asarray(inp["data"])
            except (ValueError, TypeError):
                raise bad("input 'image': data must be a (flat or nested) list of integers 0-255") from None
            if a.size != want or not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < 0 or a.max() > 255)):
                raise bad(f"input 'image': data must be {want} integers 0-255 for shape {shape}")
            frames = a.astype(np.uint8).reshape(shape)
        images = [(frames[i], color) for i in range(shape[0])]
    elif name == "image_bytes":
        if dtype != "BYTES":
            raise bad(f"input 'image_bytes' is BYTES (encoded image files), not {dtype}")
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise bad(f"input 'image_bytes' has shape {shape}; send [N] encoded images")
        if size is not None:
            images = _bytes_elements(raw, "input 'image_bytes'")
        else:
            data = inp["data"]
            if not isinstance(data, list):
                raise bad("input 'image_bytes': data must be a list")
            images = [_b64(x, "input 'image_bytes'") for x in data]
        if len(images) != shape[0]:
            raise bad(f"input 'image_bytes' has shape {shape} but {len(images)} elements")
        if any(len(x) == 0 for x in images):
            raise bad("input 'image_bytes': an element is empty")
    else:
        raise bad(f"unknown input {name!r}; this model takes 'image' (UINT8 [N, H, W, C]) or 'image_bytes' (BYTES [N])")
    if not images:
        raise bad("the request holds no image")
    if len(images) > max_images:
        raise bad(f"{len(images)} images in one request; the most is {max_images}: split it", 413)

    default_binary = params.get("binary_data_output", False) is True
    outs = req.get("outputs")
    if outs is None:
        wanted = [Wanted(o, default_binary) for o in OUTPUTS]
    else:
        if not isinstance(outs, list) or not outs:
            raise bad("outputs must be a non-empty list (or left out for all of them)")
        wanted = []
        for o in outs:
            if not isinstance(o, dict) or o.get("name") not in OUTPUTS:
                raise bad(f"unknown output {o.get('name') if isinstance(o, dict) else o!r}; this model answers "
                          f"{', '.join(OUTPUTS)}")
            p = o.get("parameters") or {}
            k = _int(p.get("classification", 0), f"output {o['name']!r} classification")
            if k and o["name"] == "label":
                raise bad("classification applies to 'scores' or 'logits'")
            wanted.append(Wanted(o["name"], p.get("binary_data", default_binary) is True, k))
    timeout = params.get("timeout")
    timeout_s = None if timeout is None else _int(timeout, "parameters.timeout (microseconds)", 1) / 1e6
    rid = req.get("id")
    if rid is not None and not isinstance(rid, str):
        raise bad("id must be a string")
    return InferRequest(rid, images, wanted, timeout_s)


def _tensor(w: Wanted, outcomes: list, labels: tuple[str, ...]) -> tuple[dict, Any]:
    """One output as (JSON description without data, values): a numpy array or a list of bytes."""
    if w.name == "label":
        return {"name": "label", "datatype": "BYTES", "shape": [len(outcomes)]}, [o.prediction.label.encode() for o in outcomes]
    rows = np.stack([o.scores if w.name == "scores" else o.logits for o in outcomes]).astype(np.float32)
    if not w.classification:
        return {"name": w.name, "datatype": "FP32", "shape": list(rows.shape)}, rows
    k = min(w.classification, rows.shape[1])
    top = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    items = [f"{row[i]:f}:{i}:{labels[i]}".encode() for row, idx in zip(rows, top) for i in idx]
    return {"name": w.name, "datatype": "BYTES", "shape": [len(outcomes), k]}, items


def answer(slot: Any, req: InferRequest, outcomes: list, timings_ms: dict) -> tuple[bytes, dict[str, str]]:
    """The infer response: JSON, or JSON + binary tensors when an output asks for binary data; (body, headers)."""
    head: dict[str, Any] = {"model_name": slot.name, "model_version": str(slot.version)}
    if req.id is not None:
        head["id"] = req.id
    # parameter values are scalars in the protocol: one per stage
    head["parameters"] = {"sha256": slot.sha256, "batch_size": max(o.batch_size for o in outcomes),
                          **{f"{stage}_ms": round(ms, 3) for stage, ms in timings_ms.items()}}
    blobs, outputs = [], []
    for w in req.outputs:
        desc, values = _tensor(w, outcomes, slot.spec.labels)
        if w.binary:
            data = (b"".join(struct.pack("<I", len(v)) + v for v in values) if isinstance(values, list)
                    else values.tobytes())
            desc["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            desc["data"] = [v.decode() for v in values] if isinstance(values, list) else values.reshape(-1).tolist()
        outputs.append(desc)
    head["outputs"] = outputs
    text = json.dumps(head).encode()
    if not blobs:
        return text, {"Content-Type": "application/json"}
    return text + b"".join(blobs), {"Content-Type": "application/octet-stream",
                                    "Inference-Header-Content-Length": str(len(text))}


def metadata(slot: Any) -> dict:
    s = slot.spec
    c = s.num_classes
    return {"name": slot.name, "versions": [str(slot.version)], "platform": f"edgecls_{slot.predictor.backend_name}",
            "inputs": [{"name": "image", "datatype": "UINT8", "shape": [-1, -1, -1, s.input.channels]},
                       {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, c]},
                        {"name": "logits", "datatype": "FP32", "shape": [-1, c]},
                        {"name": "label", "datatype": "BYTES", "shape": [-1]}],
            "parameters": {"sha256": slot.sha256, "arch": s.arch, "task": s.task,
                           "labels": json.dumps(list(s.labels))}}


def model_config(slot: Any) -> dict:
    """Triton's model configuration (tritonclient get_model_config): batch, tensors, the batching window."""
    s, c = slot.spec, slot.spec.num_classes
    return {"name": slot.name, "platform": f"edgecls_{slot.predictor.backend_name}", "backend": "edgecls",
            "max_batch_size": slot.batch,
            "input": [{"name": "image", "data_type": "TYPE_UINT8", "dims": [-1, -1, s.input.channels]},
                      {"name": "image_bytes", "data_type": "TYPE_STRING", "dims": [1]}],
            "output": [{"name": "scores", "data_type": "TYPE_FP32", "dims": [c]},
                       {"name": "logits", "data_type": "TYPE_FP32", "dims": [c]},
                       {"name": "label", "data_type": "TYPE_STRING", "dims": [1]}],
            "dynamic_batching": {"max_queue_delay_microseconds": int(slot.cfg.max_wait_ms * 1000)},
            "version_policy": {"latest": {"num_versions": 1}}}


def server_metadata() -> dict:
    return {"name": "edgecls", "version": package_version(), "extensions": EXTENSIONS}


__all__ = ["OUTPUTS", "InferRequest", "Wanted", "answer", "metadata", "model_config", "parse",
           "server_metadata"]
