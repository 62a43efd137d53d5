"""A real photo folder as users have them: truncated downloads, stray files, grayscale/CMYK/RGBA/16-bit/palette
images, EXIF-rotated phone photos, a byte-identical train/val copy. Built from the hymenoptera photos."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgecls
from edgecls.data.scan import duplicates, scan_folder
from edgecls.runtime.decode import read_rgb
from edgecls.train import DataError, TrainConfig, train


@pytest.fixture(scope="module")
def messy(hymenoptera, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("messy")
    for split, per in (("train", 6), ("val", 3)):
        for cls in ("ants", "bees"):
            d = root / split / cls
            d.mkdir(parents=True)
            for p in sorted((hymenoptera / split / cls).glob("*.jpg"))[:per]:
                shutil.copy(p, d / p.name)
    ants = root / "train" / "ants"
    photo = Image.open(next(iter(sorted((hymenoptera / "train" / "bees").glob("*.jpg"))))).convert("RGB")
    photo.convert("L").save(ants / "gray.jpg")
    photo.convert("CMYK").save(ants / "cmyk.jpg")
    rgba = photo.convert("RGBA")
    a = np.asarray(rgba).copy()
    a[:10, :10, 3] = 0  # a transparent corner
    Image.fromarray(a, "RGBA").save(ants / "alpha.png")
    wide = (np.asarray(photo.convert("L")).astype(np.uint16) * 257)
    Image.fromarray(wide).save(ants / "sixteen.png")  # 16-bit grayscale PNG, full range
    shutil.copy(hymenoptera / "train" / "ants" / "imageNotFound.gif", ants / "placeholder.gif")  # the real GIF
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: a viewer turns it 90 degrees clockwise
    photo.crop((0, 0, photo.width, photo.height * 2 // 3)).save(ants / "rotated.jpg", exif=exif.tobytes())
    good = io.BytesIO()
    photo.save(good, format="JPEG")
    (ants / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    (ants / "notes.txt").write_text("labelling notes, not an image")
    (ants / "empty.jpg").write_bytes(b"")
    (ants / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    first_train_bee = sorted((root / "train" / "bees").glob("*.jpg"))[0]
    shutil.copy(first_train_bee, root / "val" / "bees" / "copy_of_train.jpg")  # leakage
    return root


def test_scan_skips_with_reasons_converts_and_flags(messy):
    scan = scan_folder(messy / "train")
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert set(reasons) == {"truncated.jpg", "notes.txt", "empty.jpg", ".DS_Store"}
    assert "truncated or corrupt" in reasons["truncated.jpg"]
    assert "not an image file" in reasons["notes.txt"] and "0 bytes" in reasons["empty.jpg"]
    files = {Path(f.path).name: f for f in scan.files}
    assert files["gray.jpg"].converted.startswith("grayscale")
    assert files["cmyk.jpg"].converted == "CMYK to RGB"
    assert "transparency composited over white" in files["alpha.png"].converted
    assert "scaled to 8 bits" in files["sixteen.png"].converted
    assert files["placeholder.gif"].suspect and "graphic" in files["placeholder.gif"].suspect  # kept, flagged
    assert not any(f.suspect for n, f in files.items() if n not in ("placeholder.gif",))  # the photos are not flagged
    r = files["rotated.jpg"]
    assert (r.width, r.height) == (Image.open(messy / "train/ants/rotated.jpg").height, Image.open(messy / "train/ants/rotated.jpg").width)
    val = scan_folder(messy / "val", classes=scan.classes)
    groups = duplicates(scan, val)
    assert len(groups) == 1 and {Path(p).name for _, p, _ in groups[0]} >= {"copy_of_train.jpg"}


def test_strict_refuses_with_the_list_and_extra_val_class_is_an_error(messy, tmp_path):
    with pytest.raises(DataError, match="strict") as err:
        scan_folder(messy / "train", strict=True)
    assert "truncated.jpg" in str(err.value) and "notes.txt" in str(err.value)
    val = tmp_path / "val"
    shutil.copytree(messy / "val", val)
    (val / "wasps").mkdir()
    shutil.copy(next((messy / "val" / "bees").glob("*.jpg")), val / "wasps" / "w.jpg")
    with pytest.raises(DataError, match=r"\['wasps'\] that the training data lacks"):
        scan_folder(val, classes=("ants", "bees"))


def test_every_mode_is_converted_to_rgb_as_a_viewer_shows_it(messy):
    d = messy / "train" / "ants"
    for name in ("gray.jpg", "cmyk.jpg", "alpha.png", "sixteen.png", "placeholder.gif", "rotated.jpg"):
        img = read_rgb(d / name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
    alpha = read_rgb(d / "alpha.png")
    assert (alpha[:10, :10] == 255).all()  # transparent -> white, not black
    gray = np.asarray(Image.open(d / "gray.jpg"))
    sixteen = read_rgb(d / "sixteen.png")
    assert np.abs(sixteen[..., 0].astype(int) - gray.astype(int)).mean() < 3  # 16-bit range back to 8 bits


def test_exif_orientation_is_the_same_in_training_and_every_predictor_input(messy, tmp_path):
    """A phone photo stored sideways: training (read_rgb), and the Predictor given the path, the PIL image or the
    file's bytes, must all see the upright picture."""
    path = messy / "train" / "ants" / "rotated.jpg"
    stored = np.asarray(Image.open(path).convert("RGB"))  # the pixels as stored, EXIF not applied
    upright = read_rgb(path)
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))  # orientation 6 = turn 90 degrees clockwise
    model, spec = edgecls.create_model("mobilenetv3_small_050", labels=("ants", "bees"), input_size=64)
    pred = edgecls.Predictor(edgecls.export(model, spec, tmp_path / "m.onnx").path)
    want = pred.preprocess(upright, color="RGB")
    assert not np.array_equal(want, pred.preprocess(stored, color="RGB"))  # orientation matters for this picture
    np.testing.assert_array_equal(pred.preprocess(path), want)
    np.testing.assert_array_equal(pred.preprocess(Image.open(path)), want)
    np.testing.assert_array_equal(pred.preprocess(path.read_bytes()), want)
    assert pred.predict(path.read_bytes()).index == pred.predict(path).index


@pytest.mark.slow
def test_training_on_the_messy_folder_skips_and_lists(messy, tmp_path):
    r = train(TrainConfig(data=str(messy / "train"), val_dir=str(messy / "val"), arch="mobilenetv3_small_050",
                          input_size=32, epochs=1, batch_size=4, ema=False, threads=2, out_dir=str(tmp_path / "run")))
    skipped = {Path(s["path"]).name for s in r.metrics["skipped"]}
    assert skipped == {"truncated.jpg", "notes.txt", "empty.jpg", ".DS_Store"}
    assert r.metrics["val"]["n"] == 7  # 3 ants + 3 bees + the copy (the trainer does not dedup; deploy does)
    with pytest.raises(DataError, match="truncated.jpg"):
        train(TrainConfig(data=str(messy / "train"), val_dir=str(messy / "val"), strict=True, arch="mobilenetv3_small_050",
                          input_size=32, epochs=1, out_dir=str(tmp_path / "strict")))
