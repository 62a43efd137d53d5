"""Classification metrics, calibration (ECE, reliability diagram) and post-hoc temperature scaling."""

from __future__ import annotations

import numpy as np

from ..runtime.scores import softmax
from ..stats import wilson


def confusion_matrix(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def calibration(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> dict:
    """Expected calibration error over equal-width confidence bins, plus the per-bin data for the diagram."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece, rows = 0.0, []
    for b in range(bins):
        m = which == b
        if m.any():
            acc, c = float(correct[m].mean()), float(conf[m].mean())
            ece += m.mean() * abs(acc - c)
            rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(m.sum()), "accuracy": acc, "confidence": c})
    return {"ece": float(ece), "bins": rows}


def classification_metrics(logits: np.ndarray, y: np.ndarray, labels: tuple[str, ...], temperature: float = 1.0) -> dict:
    k = len(labels)
    probs = softmax(logits, temperature)
    pred = probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, k)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    top5 = np.argsort(-logits, axis=1)[:, : min(5, k)]
    cal = calibration(probs, y)
    nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))
    acc = wilson(int((pred == y).sum()), int(len(y)))
    return {
        "n": int(len(y)),
        "top1": float((pred == y).mean()),
        "top1_interval": [acc.lo, acc.hi],  # 95% Wilson interval: with n images, one image is 1/n
        "top5": float((top5 == y[:, None]).any(axis=1).mean()),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1[support > 0].mean()),
        "nll": nll,
        "ece": cal["ece"],
        "temperature": float(temperature),
        "per_class": {
            labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i in range(k)
        },
        "confusion_matrix": cm.tolist(),
        "reliability": cal["bins"],
    }


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimizing NLL on held-out logits (Guo et al. 2017), by LBFGS on log T."""
    import torch

    z = torch.as_tensor(logits, dtype=torch.float64)
    t = torch.as_tensor(y, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(log_t.exp().item(), 0.05, 20.0))
