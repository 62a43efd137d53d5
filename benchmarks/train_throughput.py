"""Training throughput: edgecls's loop vs a plain timm/torchvision loop, same model, batch, data and augmentation.

The plain loop is what a user writes from the torchvision/timm docs: PIL images, transforms.Compose(RandomCrop,
RandomHorizontalFlip, Resize, ToTensor, Normalize), DataLoader, AdamW, cross-entropy with label smoothing.
edgecls's loop does more per step (EMA, gradient clipping, channels_last, per-step LR schedule). Both run in this
process, alternately, twice; the ratio of the best runs is printed.

    .venv/bin/python benchmarks/train_throughput.py [--arch mobilenetv3_large_100] [--images 3840] [--batch 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import timm
import torch
from PIL import Image
from torchvision import transforms

from edgecls.train import TrainConfig, load_fashion_mnist, train


def plain_loop(arch: str, images: np.ndarray, labels: np.ndarray, batch: int, size: int) -> float:
    tf = transforms.Compose([
        transforms.RandomCrop(28, padding=2, padding_mode="reflect"), transforms.RandomHorizontalFlip(),
        transforms.Resize(size), transforms.ToTensor(), transforms.Normalize((0.286,), (0.353,)),
    ])

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return tf(Image.fromarray(images[i, ..., 0])), int(labels[i])

    model = timm.create_model(arch, num_classes=10, in_chans=1)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    loader = torch.utils.data.DataLoader(DS(), batch_size=batch, shuffle=True, drop_last=True)
    model.train()
    t0, seen = time.perf_counter(), 0
    for x, y in loader:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(x)
    return seen / (time.perf_counter() - t0)


def edgecls_loop(arch: str, n: int, batch: int, size: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(arch=arch, input_size=size, batch_size=batch, epochs=1, limit_train=n, limit_val=64,
                          eval_test=False, val_fraction=0.1, random_erasing=0.0, out_dir=d)
        r = train(cfg)
        return r.metrics["history"][0]["images_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="mobilenetv3_large_100")
    ap.add_argument("--images", type=int, default=3840)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = load_fashion_mnist("train")
    idx = np.random.default_rng(0).permutation(len(ds))[: a.images]
    plain, ours = [], []
    for _ in range(2):
        plain.append(plain_loop(a.arch, ds.images[idx], ds.labels[idx], a.batch, a.size))
        ours.append(edgecls_loop(a.arch, a.images, a.batch, a.size))
    print(f"{a.arch} {a.size}px batch {a.batch}, {a.threads} threads, {a.images} Fashion-MNIST images per run")
    print(f"plain timm/torchvision loop: {', '.join(f'{v:.1f}' for v in plain)} img/s")
    print(f"edgecls loop (EMA, clipping): {', '.join(f'{v:.1f}' for v in ours)} img/s")
    print(f"ratio edgecls/plain (best of each): {max(ours) / max(plain):.2f}")


if __name__ == "__main__":
    main()
