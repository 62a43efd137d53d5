"""Corruption robustness of shipped artifacts: every model on its own runtime (through the Predictor), the same
corrupted pictures for all of them, per corruption and severity accuracy with 95% intervals, and ImageNet-C's summary
figures normalised by the reference (FP32) model instead of AlexNet.

Definitions (Hendrycks & Dietterich 2019, section 4), with E the top-1 error, f a model, r the reference model, c a
corruption and s its severities:

    CE_c(f)          = sum_s E_{s,c}(f) / sum_s E_{s,c}(r)                              (corruption error)
    relative CE_c(f) = sum_s (E_{s,c}(f) - E_clean(f)) / sum_s (E_{s,c}(r) - E_clean(r))  (what corruption costs f
                                                                                       beyond its clean error)
    mCE, relative mCE = the mean over corruptions; mean corruption accuracy (mCA) = the mean accuracy over all
    (corruption, severity) cells.

CE and relative CE of the reference are 1 by definition; a relative CE is None where the reference loses nothing under
that corruption (0/0). Above 1: f suffers more from the corruption than the float model does.

Pairing: every model sees the same corrupted pixels (seeded per image, corruption and severity), so differences are
tested per image: per cell by exact McNemar, and the headline question, "does compression lose more under corruption
than on clean images?", by the per-image difference of differences
    d_i = [mean over cells (r correct - f correct)] - [r clean correct - f clean correct]
with a bootstrap interval of its mean and a sign-flip permutation test.

Labels: an ImageFolder whose class folders are the models' labels gives top-1 accuracy; with no labels (a flat folder
of photos, or `agreement=True`), the "accuracy" is agreement with the reference model's top-1 on the clean picture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import stats
from ..errors import CorruptionError, DataError
from .corruptions import check_names, check_severities, corrupt, image_seed

RESULT_KIND = "edgecls.robustness.corruptions"
SCHEMA_VERSION = 1


@dataclass
class ImageSet:
    """Decoded RGB uint8 pictures at their own resolution, with labels (indices into the models' labels) or None."""

    images: list[np.ndarray]
    labels: np.ndarray | None
    names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.images)


def load_image_set(data: str | Path, model_labels: Sequence[str], *, limit: int | None = None, seed: int = 0,
                   agreement: bool = False) -> ImageSet:
    """A folder as an ImageSet: `<class>/<images>` with class names among `model_labels` -> labelled; images directly in
    the folder, or agreement=True -> unlabelled (agreement with the reference). limit: a fixed, seeded, class-mixed
    subset of that many images."""
    from ..data.scan import load_image_folder
    from ..runtime.decode import IMAGE_SUFFIXES, read_rgb

    root = Path(data)
    if not root.is_dir():
        raise DataError(f"--data {root}: not a folder; pass a folder of images, or of <class>/<images>")
    flat = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    has_classes = any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())
    if has_classes and not flat:
        ds = load_image_folder(root)
        paths, labels = list(ds.images), ds.labels
        if agreement:
            labels = None
        else:
            unknown = [c for c in ds.classes if c not in model_labels]
            if unknown:
                raise DataError(f"{root}: class folder(s) {unknown[:5]} are not among the model's labels "
                                f"({', '.join(list(model_labels)[:5])}, ...); name the folders after the labels, or measure "
                                "agreement with the reference model instead (--agreement)")
            index = {c: list(model_labels).index(c) for c in ds.classes}
            labels = np.asarray([index[ds.classes[i]] for i in labels], np.int64)
    elif flat:
        paths, labels = flat, None
    else:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no class folders")
    order = np.arange(len(paths))
    if limit is not None and limit < len(paths):
        order = np.sort(np.random.default_rng(seed).permutation(len(paths))[:limit])
    images, names, kept = [], [], []
    for i in order:
        images.append(read_rgb(paths[i]))  # EXIF orientation applied, any mode to RGB: as the Predictor reads files
        names.append(str(Path(paths[i]).relative_to(root)))
        kept.append(i)
    return ImageSet(images, None if labels is None else np.asarray(labels)[kept], names, str(root))


def image_set_from_arrays(images: dict[str, np.ndarray] | Sequence[np.ndarray], labels=None, source: str = "arrays") -> ImageSet:
    """RGB uint8 arrays (e.g. edgecls.data.samples.sample_images()) as an ImageSet; labels None -> agreement mode."""
    if isinstance(images, dict):
        names, imgs = list(images), list(images.values())
    else:
        imgs = list(images)
        names = [f"image{i}" for i in range(len(imgs))]
    return ImageSet([np.ascontiguousarray(i) for i in imgs], None if labels is None else np.asarray(labels, np.int64), names, source)


def accuracy(correct) -> dict:
    """{"n", "k", "acc", "ci95"} of per-image outcomes, with the Wilson 95% interval (edgecls.stats)."""
    p = stats.accuracy(correct)
    return {"n": p.n, "k": p.k, "acc": p.value, "ci95": [p.lo, p.hi]}


def mean_ci(x, seed: int = 0) -> dict:
    """Mean of per-image scores (e.g. the fraction of corrupted versions classified right) with a bootstrap 95%
    interval over images: the cells of one image are not independent, so images are resampled, not cells."""
    est, lo, hi = stats.bootstrap(np.mean, np.asarray(x, np.float64), seed=seed)
    return {"acc": est, "ci95": [lo, hi]}


def sign_flip_p(d, seed: int = 0, resamples: int = 9999) -> float:
    """Two-sided p-value that paired per-image differences d have mean 0 (sign-flip permutation test, scipy's;
    exact when 2**n <= resamples)."""
    d = np.asarray(d, np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    from scipy.stats import permutation_test

    res = permutation_test((d,), np.mean, permutation_type="samples", n_resamples=resamples, alternative="two-sided",
                           rng=np.random.default_rng(seed))
    return float(min(1.0, res.pvalue))


def paired_mean_difference(a, b, seed: int = 0) -> dict:
    """mean(a - b) over images, bootstrap 95% interval, sign-flip p-value."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    est, lo, hi = stats.bootstrap(np.mean, d, seed=seed)
    return {"n": int(d.size), "mean": est, "ci95": [lo, hi], "p": sign_flip_p(d, seed)}


def _logits(pred, pixels: list[np.ndarray], batch: int = 32) -> np.ndarray:
    out = []
    for s in range(0, len(pixels), batch):
        x = np.concatenate([pred.preprocess(p, color="RGB") for p in pixels[s : s + batch]])
        out.append(pred.infer(x))
    return np.concatenate(out)


def _describe(pred) -> dict:
    art = pred.spec.artifact or {}
    return {"name": pred.path.name, "path": str(pred.path), "backend": pred.backend_name,
            "format": art.get("format", pred.path.suffix.lstrip(".")), "precision": art.get("precision", "fp32"),
            "steps": [s.step for s in pred.spec.lineage]}


def evaluate_corruptions(models: Sequence[str | Path], images: ImageSet, *, corruptions=None, severities=None,
                         reference: str | Path | None = None, seed: int = 0, threads: int | None = None,
                         progress: Callable[[str], None] | None = None, keep_outcomes: bool = False) -> dict:
    """Run every model on the clean and corrupted pictures; returns the JSON-ready result (see the module docstring).

    models: artifact paths (.onnx/.xml/.tflite/.pt/...), each run by the Predictor on its own runtime.
    reference: the model CE is normalised by and agreement is measured against (default: the first of `models`).
    keep_outcomes: each model row also carries "outcomes", its per-image right/wrong on the clean pictures and in
    every cell as strings of "0"/"1" in image order (read them with `outcomes`), for paired comparisons the result
    does not make itself, e.g. between two compared builds rather than against the reference.
    """
    from ..runtime.predictor import Predictor

    names = check_names(corruptions)
    sev = check_severities(severities)
    if not models:
        raise CorruptionError("no model given; pass at least one artifact")
    if len(images) == 0:
        raise CorruptionError("no images to evaluate on")
    paths = [Path(m) for m in models]
    ref_path = Path(reference) if reference is not None else paths[0]
    if ref_path not in paths:
        paths = [ref_path, *paths]
    ref_i = paths.index(ref_path)
    preds = [Predictor(p, threads=threads) for p in paths]
    try:
        labels = preds[ref_i].spec.labels
        for p in preds:
            if p.spec.labels != labels:
                raise CorruptionError(f"{p.path.name} has other labels than the reference {ref_path.name}; compare builds "
                                      "of one model (its FP32, INT8 and pruned artifacts)")
        say = progress or (lambda _m: None)
        t0 = time.perf_counter()
        clean = [_logits(p, images.images).argmax(1) for p in preds]
        mode = "labels" if images.labels is not None else "agreement"
        truth = images.labels if images.labels is not None else clean[ref_i]
        clean_ok = [c == truth for c in clean]
        cells = [{n: {} for n in names} for _ in preds]  # model -> corruption -> severity -> bool per image
        for name in names:
            for s in sev:
                pix = [corrupt(img, name, s, image_seed(seed, name, s, i)) for i, img in enumerate(images.images)]
                for m, p in enumerate(preds):
                    cells[m][name][s] = _logits(p, pix).argmax(1) == truth
                say(f"{name} severity {s}: " + ", ".join(f"{p.path.name} {cells[m][name][s].mean():.3f}" for m, p in enumerate(preds)))
        result = _summarize(preds, ref_i, names, sev, clean_ok, cells, seed)
        if keep_outcomes:
            for m, row in enumerate(result["models"]):
                row["outcomes"] = {"clean": _bits(clean_ok[m]),
                                   "cells": {n: {str(s): _bits(cells[m][n][s]) for s in sev} for n in names}}
        result.update({"kind": RESULT_KIND, "schema_version": SCHEMA_VERSION, "seed": seed,
                       "corruptions": list(names), "severities": list(sev), "reference": preds[ref_i].path.name,
                       "data": {"source": images.source, "n": len(images), "mode": mode,
                                "accuracy_means": "top-1 accuracy" if mode == "labels" else
                                f"agreement with {preds[ref_i].path.name}'s top-1 on the clean image"},
                       "applied": "before the Predictor's preprocessing, at each picture's own resolution",
                       "seconds": round(time.perf_counter() - t0, 1)})
        return result
    finally:
        for p in preds:
            p.close()


def _bits(ok) -> str:
    return "".join("1" if v else "0" for v in np.asarray(ok, bool))


def outcomes(row: dict, corruption: str | None = None, severities=None) -> np.ndarray:
    """Per-image correctness of one model row of a keep_outcomes result: clean (no corruption), one (corruption,
    severity) cell, or with several severities the per-image mean over them (a float per image)."""
    if "outcomes" not in row:
        raise CorruptionError(f"{row.get('name')}: this result has no per-image outcomes; evaluate with keep_outcomes=True")
    o = row["outcomes"]
    if corruption is None:
        return np.frombuffer(o["clean"].encode(), np.uint8) == ord("1")
    if corruption not in o["cells"]:
        raise CorruptionError(f"{corruption!r} was not evaluated; this result has {', '.join(o['cells'])}")
    sev = [str(s) for s in (severities or o["cells"][corruption])]
    missing = [s for s in sev if s not in o["cells"][corruption]]
    if missing:
        raise CorruptionError(f"severities {missing} of {corruption} were not evaluated; this result has "
                              f"{', '.join(o['cells'][corruption])}")
    cells = [np.frombuffer(o["cells"][corruption][s].encode(), np.uint8) == ord("1") for s in sev]
    return cells[0] if len(cells) == 1 else np.mean(cells, axis=0)


def _ce(err: dict, err_ref: dict, clean: float, clean_ref: float, names, sev) -> tuple[dict, dict]:
    ce, rce = {}, {}
    for n in names:
        den = sum(err_ref[n][s] for s in sev)
        ce[n] = sum(err[n][s] for s in sev) / den if den > 0 else None
        rden = sum(err_ref[n][s] - clean_ref for s in sev)
        rce[n] = sum(err[n][s] - clean for s in sev) / rden if rden > 0 else None
    return ce, rce


def _mean(values) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _summarize(preds, ref_i, names, sev, clean_ok, cells, seed) -> dict:
    def per_image_mean(m, only=None):
        return np.mean([cells[m][n][s] for n in (only or names) for s in sev], axis=0)

    err = [{n: {s: 1.0 - cells[m][n][s].mean() for s in sev} for n in names} for m in range(len(preds))]
    out = []
    for m, p in enumerate(preds):
        clean = clean_ok[m]
        ce, rce = _ce(err[m], err[ref_i], 1.0 - clean.mean(), 1.0 - clean_ok[ref_i].mean(), names, sev)
        row = _describe(p) | {"role": "reference" if m == ref_i else "compared",
                              "clean": accuracy(clean),
                              "cells": {}, "ce": ce, "relative_ce": rce, "mce": _mean(ce.values()),
                              "relative_mce": _mean(rce.values())}
        mca = per_image_mean(m)
        row["mean_corruption_accuracy"] = mean_ci(mca, seed)
        for n in names:
            row["cells"][n] = {}
            for s in sev:
                ok = cells[m][n][s]
                cell = accuracy(ok)
                if m != ref_i:
                    d = stats.paired(cells[ref_i][n][s], ok)
                    cell.update({"lost": d.ref_only, "gained": d.other_only, "difference": d.difference,
                                 "difference_ci95": [d.lo, d.hi], "mcnemar_p": d.p_value})
                row["cells"][n][str(s)] = cell
        if m != ref_i:
            ref_clean, ref_mca = clean_ok[ref_i].astype(float), per_image_mean(ref_i)
            row["vs_reference"] = {
                "clean_drop": paired_mean_difference(ref_clean, clean.astype(float), seed),
                "clean_paired": stats.paired(clean_ok[ref_i], clean).as_dict(),  # Newcombe interval, exact McNemar
                "corrupted_drop": paired_mean_difference(ref_mca, mca, seed),
                "extra_drop_under_corruption": paired_mean_difference(ref_mca - mca, ref_clean - clean, seed),
                # the same per corruption (mean over its severities): an average can hide one corruption INT8 handles badly
                "extra_drop_by_corruption": {
                    n: paired_mean_difference(per_image_mean(ref_i, [n]) - per_image_mean(m, [n]), ref_clean - clean, seed)
                    for n in names},
            }
        out.append(row)
    return {"models": out, "multiple_comparisons": holm_extra_drops(out, names)}


def holm_extra_drops(models: list[dict], names) -> dict:
    """Holm-adjust the per-corruption extra-drop p-values of every compared model as ONE family (the table a reader
    scans for a corruption the compressed build handles badly): each entry gains "p_holm" beside its raw "p"."""
    family = [m["vs_reference"]["extra_drop_by_corruption"][n] for m in models if "vs_reference" in m for n in names]
    for entry, adj in zip(family, stats.holm([e["p"] for e in family])):
        entry["p_holm"] = adj
    return {"method": "holm", "tests": len(family),
            "family": "extra drop under each corruption, every compared model (sign-flip p-values)"}
