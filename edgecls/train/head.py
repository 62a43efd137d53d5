"""Fit a new classifier on frozen pretrained features before fine-tuning (LP-FT, Kumar et al. 2022).

A freshly initialized head sends large, random gradients into the pretrained layers during the first steps of a
fine-tune, and on a few hundred images those steps distort features the small set cannot re-learn. Fitting the head
first (an L2-regularized logistic regression on the pooled features of center-cropped training images, solved by
LBFGS in seconds) means fine-tuning starts from a classifier that is already right, with small gradients.
Measured on hymenoptera (pretrained EfficientNet-Lite0, 245 training images): the probe alone scores 95.4% (146/153)
on validation; a fine-tune from a random head with backbone lr 1e-4 scored 93.5% after 3 epochs.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.datasets import ArrayDataset, stratified_split
from ..errors import TrainError
from ..runtime import preprocess as _pre
from ..runtime.denormals import flush_denormals
from ..runtime.spec import ModelSpec

MAX_IMAGES = 2000  # a stratified sample is enough to place a linear head; the forward pass costs per image
L2 = 1e-3  # on the head's weights; the validation score was flat from 1e-4 to 1e-2 on hymenoptera


@torch.inference_mode()
def pooled_features(model: torch.nn.Module, ds: ArrayDataset, spec: ModelSpec, batch_size: int = 32) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(ds), batch_size):
        x = np.concatenate([_pre.fast(ds.pixels(i), "RGB", spec) for i in range(s, min(len(ds), s + batch_size))])
        f = model.forward_head(model.forward_features(torch.from_numpy(x)), pre_logits=True)
        out.append(f.float().numpy())
    return np.concatenate(out)


def fit_head(model: torch.nn.Module, ds: ArrayDataset, spec: ModelSpec, *, seed: int = 0, l2: float = L2) -> dict:
    """Set model.get_classifier() (a Linear) to the logistic regression fitted on frozen features of `ds`.
    Returns {"images", "train_top1", "train_loss"} for the log and the training history."""
    if len(ds) > MAX_IMAGES:
        ds = stratified_split(ds, MAX_IMAGES / len(ds), seed)[1]
    head = model.get_classifier()
    if not isinstance(head, torch.nn.Linear):
        raise TrainError(f"head_init=linear_probe needs a Linear classifier; {spec.arch} has {type(head).__name__}")
    with flush_denormals():
        feats = torch.from_numpy(pooled_features(model, ds, spec))
    y = torch.from_numpy(ds.labels)
    lin = torch.nn.Linear(feats.shape[1], head.out_features)
    torch.manual_seed(seed)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(feats), y) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        head.weight.copy_(lin.weight)
        head.bias.copy_(lin.bias)
        logits = lin(feats)
        acc = float((logits.argmax(1) == y).float().mean())
        loss = float(torch.nn.functional.cross_entropy(logits, y))
    model.train()
    return {"images": len(ds), "train_top1": acc, "train_loss": loss}


__all__ = ["fit_head", "pooled_features"]
