"""Grad-CAM maps of a PyTorch model (the `grad-cam` package), measured rather than only drawn.

A saliency map is a claim: "these pixels are why the model said this". The deletion and insertion curves (Petsiuk et
al., RISE, 2018) test the claim on the model itself: delete the pixels the map ranks highest first (replaced by the
dataset mean, i.e. zero after normalization) and the class score should fall fast (low deletion AUC); insert them
first into a blurred copy and it should rise fast (high insertion AUC). The same curves for random maps of the same
coarseness (a random grid at Grad-CAM's own resolution, upsampled the same way) are the baseline: a map that does not
beat them does not track the model, however plausible it looks.

Explanations need gradients, so they run on the .pt model (the exported graphs have none); the maps explain the float
model, not its INT8 builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ExplainError, InputError, ModelFileError, require
from ..runtime.opencv import load_cv2


def find_target_layer(model, name: str | None = None):
    """(name, module): the named module, or the last Conv2d registered (the last feature map before pooling in a CNN)."""
    import torch

    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules:
            convs = [n for n, m in modules.items() if isinstance(m, torch.nn.Conv2d)][-5:]
            raise ExplainError(f"the model has no layer {name!r}; its last convolutions are {convs}")
        return name, modules[name]
    convs = [(n, m) for n, m in modules.items() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ExplainError(f"{type(model).__name__} has no convolutional layer to hook: Grad-CAM weights a conv "
                           "feature map by its gradients; pass layer= a module with a spatial (N, C, H, W) output")
    return convs[-1]


def grad_cam(model, x: np.ndarray, classes: Sequence[int], layer) -> tuple[np.ndarray, tuple[int, int]]:
    """Grad-CAM maps (N, H, W) in [0, 1] at the input's resolution for the given classes, and the feature map's own
    (h, w) (the maps' true coarseness)."""
    import torch

    cam_mod = require("pytorch_grad_cam", "robustness")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    seen: dict = {}

    def shape(_m, _i, out) -> None:  # a forward hook that returns something replaces the layer's output
        seen.setdefault("hw", tuple(getattr(out, "shape", ())[2:]))

    hook = layer.register_forward_hook(shape)
    try:
        with cam_mod.GradCAM(model=model, target_layers=[layer]) as cam:
            maps = cam(input_tensor=torch.from_numpy(np.ascontiguousarray(x)), targets=[ClassifierOutputTarget(int(c)) for c in classes])
    finally:
        hook.remove()
    if len(seen.get("hw", ())) != 2:
        raise ExplainError(f"layer {type(layer).__name__} has no spatial output (got shape ...{seen.get('hw')}); "
                           "pick a convolutional layer")
    return np.asarray(maps, np.float32), seen["hw"]


def random_maps(n: int, hw: tuple[int, int], size: tuple[int, int], seed: int) -> np.ndarray:
    """Random maps as coarse as Grad-CAM's: uniform noise on the feature map's grid, upsampled bilinearly."""
    cv2 = load_cv2()

    rng = np.random.default_rng(seed)
    return np.stack([cv2.resize(rng.random(hw, dtype=np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
                     for _ in range(n)])


def curves(model, x: np.ndarray, maps: np.ndarray, classes: Sequence[int], steps: int = 16) -> dict[str, np.ndarray]:
    """Deletion and insertion AUC per image (softmax probability of the class vs fraction of pixels changed, trapezoid
    rule over steps + 1 points). x: the normalized (N, C, H, W) input."""
    cv2 = load_cv2()
    import torch

    n, c, h, w = x.shape
    fractions = np.linspace(0.0, 1.0, steps + 1)
    out = {"deletion": np.zeros(n), "insertion": np.zeros(n)}
    for i in range(n):
        order = np.argsort(-maps[i].ravel(), kind="stable")  # most relevant first
        blurred = np.stack([cv2.GaussianBlur(x[i, k], (0, 0), sigmaX=max(1.0, w / 16)) for k in range(c)])
        batches = {"deletion": [], "insertion": []}
        for f in fractions:
            keep = np.zeros(h * w, bool)
            keep[order[: int(round(f * h * w))]] = True
            keep = keep.reshape(1, h, w)
            batches["deletion"].append(np.where(keep, 0.0, x[i]))  # 0 = the dataset mean after normalization
            batches["insertion"].append(np.where(keep, x[i], blurred))
        for kind, b in batches.items():
            with torch.inference_mode():
                p = torch.softmax(model(torch.from_numpy(np.stack(b).astype(np.float32))), 1)[:, int(classes[i])].numpy()
            out[kind][i] = float(np.trapezoid(p, fractions))
    return out


def overlay(x: np.ndarray, spec, cam: np.ndarray) -> np.ndarray:
    """A normalized (C, H, W) input and its map in [0, 1] as an RGB uint8 heat-map overlay."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    mean = np.asarray(spec.preprocess.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.preprocess.std, np.float32).reshape(-1, 1, 1)
    rgb = np.clip(x * std + mean, 0, 1).transpose(1, 2, 0)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    elif spec.preprocess.color == "BGR":
        rgb = rgb[..., ::-1]
    return show_cam_on_image(np.ascontiguousarray(rgb), cam, use_rgb=True)


def explain(model_path: str | Path, images: Sequence[str | Path], out_dir: str | Path, *, layer: str | None = None,
            steps: int = 16, random_baselines: int = 3, seed: int = 0) -> dict:
    """Grad-CAM of the predicted class for every image: DIR/<image>_gradcam.png overlays, and deletion/insertion AUC
    against random maps, per image and as a paired mean difference; returns (and writes DIR/explain.json) the result."""
    import json

    from PIL import Image

    from ..models.pt import load_pt
    from ..runtime.artifacts import atomic_write_bytes, atomic_write_with
    from ..runtime.predictor import Predictor
    from .evaluate import paired_mean_difference

    path = Path(model_path)
    if path.suffix != ".pt":
        raise ModelFileError(f"{path.name}: explain needs the PyTorch .pt model (Grad-CAM takes gradients, which "
                             f"{path.suffix or 'this file'} graphs do not keep); pass the .pt this artifact was exported from")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if not images:
        raise InputError("no image given; pass one or more image files")
    if steps < 2 or random_baselines < 1:
        raise ExplainError(f"steps={steps}, random_baselines={random_baselines}: use steps >= 2 (points on each curve) "
                           "and random_baselines >= 1")
    model, spec = load_pt(path)
    if spec.input.layout != "NCHW" or spec.input.dtype != "float32" or spec.input.normalized_in_graph:
        raise ExplainError(f"{path.name} takes {spec.input.layout} {spec.input.dtype} input; explain needs a .pt model on "
                           "normalized float NCHW input (what edgecls.save writes)")
    model = model.float().eval()
    layer_name, module = find_target_layer(model, layer)
    with Predictor(path) as pred:
        x = np.concatenate([pred.preprocess(p) for p in images]).astype(np.float32)
    import torch

    with torch.inference_mode():
        probs = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    classes = probs.argmax(1)
    maps, hw = grad_cam(model, x, classes, module)
    cam_auc = curves(model, x, maps, classes, steps)
    rand = {"deletion": np.zeros(len(x)), "insertion": np.zeros(len(x))}
    for r in range(random_baselines):
        auc = curves(model, x, random_maps(len(x), hw, x.shape[2:], seed + r), classes, steps)
        for k in rand:
            rand[k] += auc[k] / random_baselines
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, img in enumerate(images):
        name = f"{i:03d}_{Path(img).stem}_gradcam.png"
        pic = Image.fromarray(overlay(x[i], spec, maps[i]))
        atomic_write_with(out / name, lambda tmp, pic=pic: pic.save(tmp, format="PNG"))
        rows.append({"image": str(img), "overlay": name, "class": int(classes[i]), "label": spec.labels[classes[i]],
                     "score": float(probs[i, classes[i]]),
                     "deletion_auc": float(cam_auc["deletion"][i]), "deletion_auc_random": float(rand["deletion"][i]),
                     "insertion_auc": float(cam_auc["insertion"][i]), "insertion_auc_random": float(rand["insertion"][i])})
    result = {
        "kind": "edgecls.robustness.explain", "model": path.name, "layer": layer_name, "feature_map": list(hw),
        "method": "Grad-CAM of the predicted class (pytorch-grad-cam)", "steps": steps, "random_baselines": random_baselines,
        "seed": seed, "images": rows,
        # deletion: random - Grad-CAM (> 0: the map finds what the score depends on); insertion: Grad-CAM - random
        "deletion_gain": paired_mean_difference(rand["deletion"], cam_auc["deletion"], seed),
        "insertion_gain": paired_mean_difference(cam_auc["insertion"], rand["insertion"], seed),
    }
    atomic_write_bytes(out / "explain.json", json.dumps(result, indent=2).encode())
    return result
