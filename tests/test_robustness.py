"""Corruptions (ImageNet-C style, albumentations) and `edgecls eval` on real photos and real runtimes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("albumentations")

from edgecls.cli.demo import ESPRESSO  # noqa: E402
from edgecls.cli.main import main  # noqa: E402
from edgecls.robustness import CORRUPTIONS, CorruptionError, corrupt, parse_severities  # noqa: E402
from edgecls.robustness.corruptions import check_names  # noqa: E402


def test_every_corruption_on_a_real_photo(photos):
    """Shape and dtype kept, reproducible for a seed, and severity 5 changes the picture more than severity 1:
    catches a severity table read backwards (contrast's factors fall as severity rises) or a transform that no-ops."""
    img = photos["chelsea"]
    for name in CORRUPTIONS:
        mild, strong = corrupt(img, name, 1, seed=3), corrupt(img, name, 5, seed=3)
        assert mild.shape == img.shape and mild.dtype == np.uint8, name
        assert np.array_equal(strong, corrupt(img, name, 5, seed=3)), f"{name} is not reproducible for a seed"
        d1 = np.abs(mild.astype(np.int16) - img).mean()
        d5 = np.abs(strong.astype(np.int16) - img).mean()
        assert 0 < d1 < d5, f"{name}: severity 1 changes {d1:.2f}, severity 5 {d5:.2f} grey levels on average"
    grey = np.ascontiguousarray(photos["camera"][..., 0])  # a grey picture stays grey, in its own shape
    assert grey.ndim == 2 and corrupt(grey, "motion_blur", 3).shape == grey.shape
    noisy = [corrupt(img, "gaussian_noise", 3, seed=s) for s in (0, 1)]
    assert not np.array_equal(*noisy), "the seed does not reach albumentations' generator"


def test_bad_names_and_severities(photos):
    with pytest.raises(CorruptionError, match="unknown corruption.*fgo.*choose from.*fog"):
        check_names(["fog", "fgo"])
    for bad in ("0-5", "6", "5-1", "2.5", "a", ""):
        with pytest.raises(CorruptionError, match="severit"):
            parse_severities(bad)
    assert parse_severities("1-3") == (1, 2, 3) and parse_severities("5,1 3") == (1, 3, 5)
    with pytest.raises(CorruptionError, match="out of range"):
        corrupt(photos["coffee"], "fog", 6)
    with pytest.raises(CorruptionError, match="uint8"):
        corrupt(photos["coffee"].astype(np.float32), "fog", 1)


def _folder(tmp_path, photos, names):
    d = tmp_path / "photos"
    d.mkdir()
    for n in names:
        Image.fromarray(photos[n]).save(d / f"{n}.png")
    return d


def test_eval_cli_two_runtimes_see_the_same_pixels(artifacts, photos, tmp_path, capsys):
    """FP32 ONNX Runtime vs FP32 OpenVINO on the same corrupted photos: the reference agrees with itself on clean images
    by definition, and the two runtimes agree on (nearly) every corrupted picture, which they could not if each model
    got its own noise draw."""
    data = _folder(tmp_path, photos, ["chelsea", "coffee", "astronaut", "rocket", "coins", "camera"])
    out = tmp_path / "deploy_out" / "robustness"  # where the deploy report looks for it
    rc = main(["eval", str(artifacts["onnx"]), str(artifacts["xml"]), "--data", str(data), "--corruptions",
               "gaussian_noise", "jpeg_compression", "--severities", "1,5", "-o", str(out), "--json"])
    assert rc == 0
    result = json.loads((out / "robustness.json").read_text())
    assert result == json.loads(capsys.readouterr().out)
    ref, ov = result["models"]
    assert ref["role"] == "reference" and ref["clean"]["acc"] == 1.0 and ref["clean"]["n"] == 6
    assert all(v in (1.0, None) for v in ref["ce"].values())  # CE is normalised by the reference itself
    assert ov["backend"] == "openvino" and result["data"]["mode"] == "agreement"
    for name in ("gaussian_noise", "jpeg_compression"):
        for s in ("1", "5"):
            cell = ov["cells"][name][s]
            assert cell["lost"] + cell["gained"] <= 1, (name, s, cell)
            assert cell["ci95"][0] <= cell["acc"] <= cell["ci95"][1]
    strong = np.mean([ref["cells"][n]["5"]["acc"] for n in result["corruptions"]])
    assert strong < 1.0, "severity-5 noise and JPEG changed no decision of Lite0: the corruptions did not reach the model"
    extra = ov["vs_reference"]["extra_drop_under_corruption"]
    assert extra["ci95"][0] <= extra["mean"] <= extra["ci95"][1] and 0 <= extra["p"] <= 1
    by = ov["vs_reference"]["extra_drop_by_corruption"]
    assert list(by) == result["corruptions"] and np.isclose(np.mean([b["mean"] for b in by.values()]), extra["mean"])
    # Holm over the table's 2 tests: the smaller p doubled, the larger kept unless the first exceeds it
    p = sorted(b["p"] for b in by.values())
    assert sorted(b["p_holm"] for b in by.values()) == pytest.approx([min(1, 2 * p[0]), min(1, max(2 * p[0], p[1]))])
    assert result["multiple_comparisons"] == {"method": "holm", "tests": 2, "family": result["multiple_comparisons"]["family"]}
    assert "Holm p=" in (out / "robustness.md").read_text()
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| model |" in (out / "robustness.md").read_text()
    # robustness.md through the shared renderer: the summary rows, the extra drop per corruption, cell for cell
    from report_tables import md_tables

    from edgecls.report import robustness as report

    summary, extra = md_tables((out / "robustness.md").read_text())
    rows = report.summary_rows(result)
    assert summary == [list(rows[0]), *[[str(v) for v in r.values()] for r in rows]]
    assert extra == [["model", *result["corruptions"]], *report.extra_drop_rows(result)]

    from edgecls.report.deploy.robustness import robustness_section
    from edgecls.report.document import to_html

    assert robustness_section({"out": str(tmp_path)}) is None  # no eval run there: no section
    section = robustness_section({"out": str(tmp_path / "deploy_out")})
    html = to_html([section], "t", "m")
    assert section.data["models"][1]["backend"] == "openvino" and "lite0.xml" in html and "data:image/png;base64" in html


def test_eval_labelled_folder_maps_folder_names_to_model_labels(artifacts, lite0, photos, tmp_path):
    """Class folders named after the model's labels give top-1 accuracy against the MODEL's label index (967 for
    espresso), not the folder's position: coffee is espresso, chelsea (a cat) is no tench."""
    from edgecls.robustness import evaluate_corruptions, load_image_set

    labels = lite0[1].labels
    for n, label in (("coffee", labels[ESPRESSO]), ("chelsea", labels[0])):
        d = tmp_path / "labelled" / label
        d.mkdir(parents=True)
        Image.fromarray(photos[n]).save(d / f"{n}.png")
    images = load_image_set(tmp_path / "labelled", labels)
    assert sorted(images.labels.tolist()) == [0, ESPRESSO]
    result = evaluate_corruptions([artifacts["onnx"]], images, corruptions=["contrast"], severities=[1])
    assert result["data"]["mode"] == "labels"
    assert result["models"][0]["clean"]["k"] == 1 and result["models"][0]["clean"]["n"] == 2


def test_eval_cli_errors(artifacts, hymenoptera, tmp_path, capsys):
    def fails(*args, match):
        assert main(["eval", str(artifacts["onnx"]), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("edgecls: error: ") and len(err.splitlines()) == 1 and match in err, err

    fails("--data", str(hymenoptera / "val"), "--corruptions", "fgo", match="unknown corruption(s) ['fgo']")
    fails("--data", str(hymenoptera / "val"), "--severities", "1-6", match="severity 6 is out of range")
    fails("--data", str(hymenoptera / "val"), "--corruptions", "fog", match="are not among the model's labels")
    fails("--data", str(tmp_path), match="holds no images")


@pytest.mark.slow
def test_explain_lite0_maps_beat_random_maps(artifacts, photos, tmp_path, capsys):
    """Grad-CAM of pretrained Lite0 on the espresso photo: deleting the map's top pixels first kills the espresso score
    faster than deleting by a random map as coarse, and inserting them first restores it faster. A map for the wrong
    class, an inverted ranking or a hook on the wrong tensor would not."""
    data = _folder(tmp_path, photos, ["coffee", "chelsea"])
    out = tmp_path / "explain"
    rc = main(["explain", str(artifacts["pt"]), str(data / "coffee.png"), str(data / "chelsea.png"), "-o", str(out),
               "--steps", "6", "--random-baselines", "2", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r == json.loads((out / "explain.json").read_text())
    assert r["layer"] == "conv_head" and r["feature_map"] == [7, 7]
    coffee = r["images"][0]
    assert coffee["class"] == ESPRESSO
    assert coffee["deletion_auc"] < coffee["deletion_auc_random"] - 0.05
    assert coffee["insertion_auc"] > coffee["insertion_auc_random"] + 0.05
    overlay = np.asarray(Image.open(out / coffee["overlay"]))
    assert overlay.shape == (224, 224, 3) and overlay.std() > 10


def test_explain_errors(artifacts, photos, tmp_path, capsys):
    import torch

    from edgecls.robustness.explain import ExplainError, find_target_layer

    with pytest.raises(ExplainError, match="no convolutional layer to hook"):
        find_target_layer(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)))
    img = _folder(tmp_path, photos, ["coffee"]) / "coffee.png"
    for model, args, match in ((artifacts["onnx"], [], "explain needs the PyTorch .pt model"),
                               (artifacts["pt"], ["--layer", "conv_tail"], "has no layer 'conv_tail'"),
                               (tmp_path / "missing.pt", [], "no such model file")):
        assert main(["explain", str(model), str(img), "-o", str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("edgecls: error: ") and match in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_adversarial_pgd_breaks_the_pt_and_transfers(artifacts, photos, tmp_path, capsys):
    """`edgecls eval PT ONNX XML --adversarial 2`: PGD at 2 grey levels out of 255 takes most of the float model's
    answers (a no-op attack, a sign error or a gradient taken from the wrong tensor would leave them), the pictures
    stay uint8 within the budget, the same pictures reach each artifact on its own runtime, and the result lands in
    robustness.{json,md} and the deploy report's robustness section."""
    data = _folder(tmp_path, photos, ["chelsea", "coffee", "astronaut", "rocket", "coins", "camera"])
    out = tmp_path / "deploy_out" / "robustness"
    rc = main(["eval", str(artifacts["pt"]), str(artifacts["onnx"]), str(artifacts["xml"]), "--data", str(data),
               "--adversarial", "2", "--pgd-steps", "5", "-o", str(out), "--json"])
    assert rc == 0
    result = json.loads((out / "robustness.json").read_text())
    assert result == json.loads(capsys.readouterr().out)
    assert "models" not in result, "--adversarial alone must not run the corruption suite"
    adv = result["adversarial"]
    assert adv["source"] == "lite0.pt" and adv["conditions"] == ["clean", "FGSM eps=2", "PGD-5 eps=2"]
    assert adv["linf"]["clean"] == 0 and 1 <= adv["linf"]["FGSM eps=2"] <= 2 and 1 <= adv["linf"]["PGD-5 eps=2"] <= 2
    pt, onnx, xml = adv["models"]
    assert (pt["role"], onnx["role"], xml["role"]) == ("white box", "reference", "transfer")
    assert onnx["backend"] == "onnxruntime" and xml["backend"] == "openvino"
    assert pt["conditions"]["clean"]["acc"] == 1.0 and pt["conditions"]["clean"]["n"] == 6
    pgd = pt["conditions"]["PGD-5 eps=2"]
    assert pgd["acc"] <= 2 / 6, f"PGD at 2 grey levels kept {pgd['k']}/6 of the .pt's answers: the attack did little"
    assert pgd["ci95"][0] <= pgd["acc"] <= pgd["ci95"][1]
    assert onnx["conditions"]["clean"]["acc"] >= 5 / 6  # the FP32 export answers as the .pt on clean crops
    assert onnx["conditions"]["PGD-5 eps=2"]["acc"] <= 3 / 6, "a white-box attack on the .pt must transfer to its FP32 ONNX"
    assert "mcnemar_p" in xml["conditions"]["PGD-5 eps=2"] and "mcnemar_p" not in onnx["conditions"]["clean"]
    md = (out / "robustness.md").read_text()
    assert "PGD-5 eps=2" in md and "lite0.xml" in md and not (out / "robustness.png").exists()

    from edgecls.report.deploy.robustness import robustness_section
    from edgecls.report.document import to_html

    section = robustness_section({"out": str(tmp_path / "deploy_out")})
    html = to_html([section], "t", "m")
    assert section.data["adversarial"]["source"] == "lite0.pt" and "PGD-5 eps=2" in html


def test_adversarial_pictures_are_uint8_within_budget(lite0, photos):
    from edgecls.robustness import attack, model_crops

    model, spec = lite0
    crops = model_crops([photos["coffee"], photos["chelsea"]], spec)
    assert crops.dtype == np.uint8 and crops.shape == (2, 224, 224, 3)
    adv = attack(model.eval(), spec, crops, np.array([ESPRESSO, 281]), eps=3, steps=1)  # FGSM, 281 = tabby cat
    diff = np.abs(adv.astype(np.int16) - crops)
    assert adv.dtype == np.uint8 and adv.shape == crops.shape
    assert diff.max() <= 3 and (diff > 0).mean() > 0.5, "FGSM moves most pixels by up to eps grey levels, never more"


def test_adversarial_errors(artifacts, photos, tmp_path, capsys):
    from edgecls.robustness import AdversarialError, check_eps

    assert check_eps(["4", 1, 2.5, 1]) == (1.0, 2.5, 4.0) and check_eps([]) == (1.0, 2.0, 4.0)
    for bad, match in (("-1", "out of range"), ("300", "out of range"), ("0.5", "less than 1 rounds away"),
                       ("abc", "not a number"), ("nan", "out of range")):
        with pytest.raises(AdversarialError, match=match):
            check_eps([bad])
    data = _folder(tmp_path, photos, ["coffee"])

    def fails(models, *args, match):
        assert main(["eval", *map(str, models), "--data", str(data), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("edgecls: error: ") and len(err.splitlines()) == 1 and match in err, err

    fails([artifacts["pt"], artifacts["onnx"]], "--adversarial", "abc", match="eps 'abc' is not a number")
    fails([artifacts["pt"], artifacts["onnx"]], "--adversarial", "256", match="eps '256' is out of range")
    fails([artifacts["pt"], artifacts["onnx"]], "--adversarial", "-3", match="eps '-3' is out of range")
    fails([artifacts["onnx"], artifacts["xml"]], "--adversarial", "2", match="none of lite0.onnx, lite0.xml is one")
    fails([artifacts["onnx"]], "--adversarial", "--attack-model", str(artifacts["xml"]), match="crafted on the PyTorch .pt model")
    fails([artifacts["pt"]], "--adversarial", match="give the artifacts to test transfer to")
    fails([artifacts["pt"], artifacts["onnx"]], "--adversarial", "2", "--pgd-steps", "1", match="PGD needs 2 or more steps")


@pytest.mark.slow
def test_training_report_gallery_of_confident_mistakes(cifar10_small, tmp_path, monkeypatch):
    """A tiny real CIFAR-10 run (4 classes, one epoch: plenty of mistakes): the gallery shows the N most confident
    WRONG validation predictions, most confident first, each with a Grad-CAM overlay beside metrics.json; checked
    against the saved model through the Predictor (a gallery of right answers, of the least confident mistakes, or
    with confidences at the wrong temperature would fail)."""
    import edgecls
    from edgecls.data.scan import load_image_folder
    from edgecls.train import TrainConfig, train
    from edgecls.train.mistakes import write_gallery

    train_dir, val_dir = cifar10_small
    out = tmp_path / "run"
    r = train(TrainConfig(data=str(train_dir), val_dir=str(val_dir), arch="mobilenetv3_small_050", input_size=32,
                          epochs=1, batch_size=32, ema=False, threads=2, mistakes=5, out_dir=str(out)))
    entry = json.loads((out / "metrics.json").read_text())["mistakes"]
    assert entry["layer"] and entry["n"] == 60 and len(entry["shown"]) == 5 and entry["wrong"] >= 5
    pred = edgecls.Predictor(out / "best.pt")
    shown = entry["shown"]
    assert [s["confidence"] for s in shown] == sorted((s["confidence"] for s in shown), reverse=True)
    for s in shown:
        p = pred.predict(s["image"])
        assert p.label == s["predicted"] != s["true"] == Path(s["image"]).parent.name
        assert p.score == pytest.approx(s["confidence"], abs=1e-4)
        overlay = np.asarray(Image.open(out / s["overlay"]))
        assert overlay.shape == (32, 32, 3) and overlay.std() > 5
    # no wrong answer left out of the gallery is more confident than the least confident one shown
    val = load_image_folder(val_dir)
    others = [p.score for f, y, p in zip(val.images, val.labels, pred.predict(list(map(str, val.images))))
              if p.label != val.classes[y] and str(f) not in {s["image"] for s in shown}]
    assert max(others) <= shown[-1]["confidence"] + 1e-6
    assert (out / "mistakes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from types import SimpleNamespace

    from edgecls.report.deploy.training import mistakes_section
    from edgecls.report.document import to_html

    section = mistakes_section({"model": SimpleNamespace(folder=out)})
    html = to_html([section], "t", "m")
    assert "data:image/png;base64" in html and Path(shown[0]["image"]).name in html

    # without the robustness extra: the mistakes are still listed, the maps skipped with the reason
    import sys

    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)
    logits = np.log(np.array([[0.1, 0.9], [0.8, 0.2]]))
    ds = type("DS", (), {"labels": np.array([0, 0]), "images": ["a.jpg", "b.jpg"], "__len__": lambda self: 2})()
    spec = r.spec.replace(labels=("x", "y"))
    skipped = write_gallery(r.model, spec, ds, logits, 1.0, tmp_path / "g", n=3)
    assert "robustness extra" in skipped["skipped"] and [s["image"] for s in skipped["shown"]] == ["a.jpg"]
    none = write_gallery(r.model, spec, ds, np.log(np.array([[0.9, 0.1], [0.8, 0.2]])), 1.0, tmp_path / "g", n=3)
    assert none["skipped"].startswith("no mistakes") and not (tmp_path / "g").exists()


def test_corruption_augmented_training_images(cifar10_small):
    """QAT's contrast augmentation on real CIFAR-10 JPEGs: p=1 at severity 5 makes every read a 0.05-contrast picture,
    p=0.5 about half of them, draws are reproducible per seed, differ per read, and bad settings are clear errors."""
    from edgecls.data.scan import load_image_folder
    from edgecls.robustness.augment import corruption_augmented

    ds = load_image_folder(cifar10_small[0])
    always = corruption_augmented(ds, ["contrast"], p=1.0, severities=[5])
    for i in range(0, len(ds), 23):
        a, b = ds.image(i).astype(float), always.image(i).astype(float)
        assert a.shape == b.shape and b.std() < 0.25 * a.std() + 1, (i, a.std(), b.std())
    assert len(always.subset(np.arange(10))) == 10 and always.subset([3]).image(0).std() < 0.25 * ds.image(3).std() + 1
    half, again = (corruption_augmented(ds, ["contrast", "gaussian_noise"], p=0.5, seed=1) for _ in range(2))
    first = [half.image(i) for i in range(len(ds))]
    assert all(np.array_equal(again.image(i), first[i]) for i in range(len(ds)))  # same seed, same reads: same pictures
    changed = [not np.array_equal(first[i], ds.image(i)) for i in range(len(ds))]
    assert 0.35 < np.mean(changed) < 0.65, np.mean(changed)
    assert sum(not np.array_equal(half.image(i), first[i]) for i in range(40)) > 5  # another read, another draw
    from edgecls.robustness.augment import corruption_augmented as aug

    with pytest.raises(CorruptionError, match="unknown corruption.*contrst"):
        aug(ds, ["contrst"])
    with pytest.raises(CorruptionError, match="p=0"):
        aug(ds, ["contrast"], p=0)
    with pytest.raises(CorruptionError, match="out of range"):
        aug(ds, ["contrast"], severities=[6])
    with pytest.raises(CorruptionError, match="at least one corruption"):
        aug(ds, [])


def test_evaluate_keeps_per_image_outcomes_for_paired_comparisons(artifacts, photos):
    from edgecls.robustness import evaluate_corruptions, image_set_from_arrays, outcomes

    images = image_set_from_arrays({n: photos[n] for n in list(photos)[:6]})
    res = evaluate_corruptions([artifacts["onnx"], artifacts["xml"]], images, corruptions=["contrast", "fog"],
                               severities=[3, 5], keep_outcomes=True, threads=2)
    for row in res["models"]:
        assert outcomes(row).mean() == pytest.approx(row["clean"]["acc"])
        for s in ("3", "5"):
            assert outcomes(row, "contrast", [int(s)]).mean() == pytest.approx(row["cells"]["contrast"][s]["acc"])
        assert outcomes(row, "fog").shape == (6,) and outcomes(row, "fog").dtype == np.float64  # mean over 3 and 5
    assert outcomes(res["models"][0]).all()  # agreement mode: the reference agrees with itself on clean pictures
    with pytest.raises(CorruptionError, match="'jpeg_compression' was not evaluated"):
        outcomes(res["models"][1], "jpeg_compression")
    with pytest.raises(CorruptionError, match=r"severities \['1'\] of contrast"):
        outcomes(res["models"][1], "contrast", [1])
    plain = evaluate_corruptions([artifacts["onnx"]], images, corruptions=["contrast"], severities=[5], threads=2)
    with pytest.raises(CorruptionError, match="keep_outcomes=True"):
        outcomes(plain["models"][0])
