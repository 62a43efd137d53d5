"""The training report's gallery of the most confident mistakes, each with its Grad-CAM map.

A validation image the model gets wrong with a confidence of 0.99 is the most useful thing a training report can
show: a mislabelled image, two classes that overlap, or a shortcut the model learned (the map shows what it looked
at). Confidence is the calibrated one (softmax at the fitted temperature), what the Predictor reports.

The maps come from edgecls.robustness.explain (the `grad-cam` package, the `robustness` extra); without it, or when
the model has no convolutional layer or nothing is wrong, the gallery is skipped and metrics.json says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GALLERY = "mistakes.png"
FOLDER = "mistakes"


def most_confident_mistakes(logits: np.ndarray, labels: np.ndarray, temperature: float, n: int) -> list[tuple[int, int, float]]:
    """(index, predicted class, calibrated confidence) of the n wrong predictions with the highest confidence."""
    z = logits / temperature
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    pred = p.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    order = wrong[np.argsort(-p[wrong, pred[wrong]], kind="stable")][:n]
    return [(int(i), int(pred[i]), float(p[i, pred[i]])) for i in order]


def _name(ds, i: int) -> str:
    x = ds.images[i]
    return str(x) if isinstance(x, (str, Path)) else f"validation image #{i}"


def write_gallery(model, spec, ds, logits: np.ndarray, temperature: float, out: Path, n: int = 8) -> dict:
    """Overlays OUT/mistakes/NN_<class>_as_<class>.png and a grid OUT/mistakes.png of the n most confident wrong
    validation predictions; returns the metrics.json entry (what is shown, or why nothing is)."""
    if n <= 0:
        return {"skipped": "mistakes: 0 (gallery turned off)"}
    picked = most_confident_mistakes(logits, ds.labels, temperature, n)
    wrong = int((logits.argmax(1) != ds.labels).sum())
    if not picked:
        return {"skipped": f"no mistakes: every one of the {len(ds)} validation images is classified right", "wrong": 0}
    import importlib

    try:
        importlib.import_module("pytorch_grad_cam")
    except ImportError:
        return {"skipped": "Grad-CAM maps need the robustness extra (pip install 'edgecls[robustness]')", "wrong": wrong,
                "shown": [{"image": _name(ds, i), "true": spec.labels[int(ds.labels[i])], "predicted": spec.labels[c],
                           "confidence": conf} for i, c, conf in picked]}
    from PIL import Image

    from ..errors import ExplainError
    from ..robustness.explain import find_target_layer, grad_cam, overlay
    from ..runtime import preprocess as _pre
    from ..runtime.artifacts import atomic_write_with

    model = model.float().eval()
    try:
        layer_name, layer = find_target_layer(model)
    except ExplainError as exc:
        return {"skipped": str(exc), "wrong": wrong}
    x = np.concatenate([_pre.fast(ds.pixels(i), "RGB", spec) for i, _, _ in picked]).astype(np.float32)
    try:
        maps, _ = grad_cam(model, x, [c for _, c, _ in picked], layer)
    except Exception as exc:  # noqa: BLE001 (e.g. a fake-quantized graph no gradient flows through): the model is
        # trained and saved by now, so the report says why instead of failing the run
        return {"skipped": f"Grad-CAM failed at {layer_name}: {type(exc).__name__}: {exc}", "wrong": wrong}
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    shown, pictures = [], []
    for k, ((i, c, conf), cam) in enumerate(zip(picked, maps)):
        true = spec.labels[int(ds.labels[i])]
        pic = overlay(x[k], spec, cam)
        file = f"{k + 1:02d}_{_safe(true)}_as_{_safe(spec.labels[c])}.png"
        atomic_write_with(folder / file, lambda tmp, pic=pic: Image.fromarray(pic).save(tmp, format="PNG"))
        pictures.append(pic)
        shown.append({"image": _name(ds, i), "true": true, "predicted": spec.labels[c], "confidence": conf,
                      "overlay": f"{FOLDER}/{file}"})
    _grid(pictures, shown, out / GALLERY)
    return {"gallery": GALLERY, "layer": layer_name, "wrong": wrong, "n": len(ds), "shown": shown,
            "confidence": f"softmax at temperature {temperature:.3f}", "method": "Grad-CAM of the predicted class"}


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)[:40] or "class"


def _grid(pictures: list[np.ndarray], shown: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save_figure

    cols = min(4, len(pictures))
    rows = -(-len(pictures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.5 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, pic, s in zip(axes.ravel(), pictures, shown):
        ax.imshow(pic)
        ax.set_title(f"true {s['true']}\npredicted {s['predicted']} {s['confidence']:.2f}", fontsize=8)
    fig.suptitle("most confident mistakes on validation, with the Grad-CAM map of the predicted class", fontsize=9)
    save_figure(fig, path)
