"""A 50%-MAC pruned EfficientNet-Lite0 for the corruption comparison (benchmarks/robustness_lite0.py).

Pretrained Lite0 is pruned by torch-pruning (edgecls.compress.prune: group L2 magnitude, channels rounded to 8, 5
steps) to <= 50% of its MACs, then recovered by distillation from the unpruned FP32 model on unlabelled photos (no
ImageNet labels offline): the ants/bees *training* photos (hymenoptera train, 245 pictures) under random resized
crops and flips, loss = Hinton's KD term only (edgecls.train.loop.kd_loss), AdamW with a cosine schedule, the last
epoch kept (no selection on any evaluation image). Agreement with the FP32 model's top-1 on hymenoptera *val*
(153 photos, never seen here) is printed before and after recovery, with Wilson intervals.

    nice -n 19 python benchmarks/prune_lite0.py [--epochs 12] [-o .data/robustness_lite0]

Writes DIR/lite0_pruned50.pt and DIR/lite0_pruned50.onnx (verified against PyTorch on the bundled photos).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def agreement(student, teacher_top1: np.ndarray, ds, spec) -> str:
    from edgecls import stats
    from edgecls.train.loop import predict_logits

    return stats.accuracy(predict_logits(student, ds, spec).argmax(1) == teacher_top1).pct()


def main() -> int:
    import torch

    import edgecls
    from edgecls.compress.prune import measure, prune
    from edgecls.data.datasets import ArrayDataset
    from edgecls.train.config import TrainConfig
    from edgecls.train.loop import kd_loss, predict_logits
    from edgecls.train.transforms import TrainSet, augmenter
    from tools import shared_data

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--out", default=str(ROOT / ".data" / "robustness_lite0"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    root = shared_data.extract_hymenoptera(out / "hymenoptera")
    teacher, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    teacher.eval()

    def folder(split: str) -> ArrayDataset:
        from edgecls.runtime.decode import IMAGE_SUFFIXES

        files = sorted(p for p in (root / split).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.suffix.lower() != ".gif")
        ds = ArrayDataset(files, np.zeros(len(files), np.int64), spec.labels)
        ds.labels = predict_logits(teacher, ds, spec).argmax(1)  # the teacher's top-1: agreement is the figure
        return ds

    train_ds, val_ds = folder("train"), folder("val")
    student, sspec = prune(copy.deepcopy(teacher), spec, target_macs=0.5, steps=5)
    before, after = measure(teacher, spec), measure(student, spec)
    print(f"pruned: {after.macs / 1e6:.0f} M MACs ({after.macs / before.macs:.1%} of {before.macs / 1e6:.0f} M), "
          f"{after.params / 1e6:.2f} M params ({after.params / before.params:.1%})", flush=True)
    print(f"agreement with FP32 on hymenoptera val before recovery: {agreement(student, val_ds.labels, val_ds, spec)}", flush=True)

    cfg = TrainConfig.from_dict({"augment": "rrc", "rrc_scale": 0.25})
    loader = torch.utils.data.DataLoader(TrainSet(train_ds, spec, augmenter(cfg, spec)), batch_size=a.batch, shuffle=True,
                                         drop_last=True, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * len(loader), pct_start=0.1)
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(a.epochs):
        student.train()
        total, seen = 0.0, 0
        for x, _ in loader:
            with torch.no_grad():
                t_out = teacher(x)
            loss = kd_loss(student(x), t_out, a.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + loss.item() * len(x), seen + len(x)
        print(f"epoch {epoch + 1}/{a.epochs} KD loss {total / seen:.4f}  {time.perf_counter() - t0:.0f}s wall, "
              f"{time.process_time() - c0:.0f}s CPU", flush=True)
    student.eval()
    print(f"agreement with FP32 on hymenoptera val after recovery: {agreement(student, val_ds.labels, val_ds, spec)} "
          f"(train photos: {agreement(student, train_ds.labels, train_ds, spec)})", flush=True)
    sspec = sspec.with_step("distill", {"teacher": "efficientnet_lite0 pretrained FP32", "data": "hymenoptera train, unlabelled",
                                        "epochs": a.epochs, "kd_temperature": a.temperature, "lr": a.lr})
    edgecls.export(student, sspec, out / "lite0_pruned50.pt")
    print(f"wrote {edgecls.export(student, sspec, out / 'lite0_pruned50.onnx')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
