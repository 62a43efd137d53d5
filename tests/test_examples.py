"""The examples run for real: a folder to CSV, the video overlay (the HTTP service is `edgecls serve`: test_serve.py)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_folder_to_csv(artifacts, photos, tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(photos["coffee"]).save(d / "coffee.jpg")
    Image.fromarray(photos["chelsea"]).save(d / "cat.png")
    (d / "broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "res.csv"
    r = subprocess.run([sys.executable, EXAMPLES / "folder.py", artifacts["onnx"], d, out], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {Path(row["path"]).name: row for row in csv.DictReader(out.open())}
    assert rows["coffee.jpg"]["label"] == "espresso"
    assert int(rows["cat.png"]["index"]) in range(281, 286)
    assert "not an image" in rows["broken.jpg"]["error"]


def test_webcam_example_on_a_video(artifacts, photos, tmp_path):
    clip = tmp_path / "in.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    for _ in range(8):
        w.write(cv2.resize(np.ascontiguousarray(photos["coffee"][..., ::-1]), (640, 360)))
    w.release()
    out = tmp_path / "out.avi"
    r = subprocess.run([sys.executable, EXAMPLES / "webcam.py", artifacts["xml"], "--source", clip, "--output", out,
                        "--no-window", "--process-all"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("espresso") == 8
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
