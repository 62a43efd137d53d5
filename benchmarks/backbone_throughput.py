"""What this machine does per image for each backbone, input side and split point: the numbers the time planner uses.

    flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/backbone_throughput.py \
        [--archs efficientnet_lite0 efficientnet_lite1 efficientnet_lite2] [--sizes 128 160 224 ...] [--stages 4 5 6]

For each setting, on real CIFAR-10 JPEGs (../shared/data; 200 of them extracted into .data/cifar10_probe), edgecls.train.probe.measure
times: making the cache (decode + preprocess + the frozen stem and stages on OpenVINO, images/s per view), a training
step of the tail on those activations (images/s), the tail's forward on validation activations, and the whole model's
forward (PyTorch, the finish); plus the cache's bytes per view. Each row is one short measurement (warm-up batch, then
timed batches) under the load printed beside it: run alone, under the lock, and compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", nargs="+", default=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    ap.add_argument("--sizes", nargs="+", type=int, default=None, help="input sides (default: 128, 160, 192 and the arch's own)")
    ap.add_argument("--stages", nargs="+", type=int, default=[4, 5, 6], help="frozen stages (split points)")
    ap.add_argument("--images", type=int, default=72, help="real images per probe (8 of them warm up)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    a = ap.parse_args(argv)

    import torch

    from edgecls.data.scan import load_image_folder
    from edgecls.models.registry import default_preprocess, get_arch
    from edgecls.train.probe import Setting, measure
    from tools import shared_data

    torch.set_num_threads(a.threads)
    ds = load_image_folder(shared_data.extract_cifar10(shared_data.cache_dir() / "cifar10_probe", per_class=20))
    rows = []
    print(f"{'arch':20s} {'px':>4s} {'frozen':>6s} {'cache img/s':>11s} {'train img/s':>11s} {'tail eval':>9s} "
          f"{'full fwd':>8s} {'KB/view':>8s} {'setup s':>7s} {'probe s':>7s} {'load':>5s}")
    for arch in a.archs:
        native = default_preprocess(get_arch(arch))[1].height
        sizes = a.sizes or sorted({128, 160, 192, native})
        for size in sizes:
            for stages in a.stages:
                load = os.getloadavg()[0]
                c = measure(Setting(arch, size, stages), ds, batch=a.batch, threads=a.threads, images=a.images)
                rows.append(c.to_dict() | {"load": load})
                print(f"{arch:20s} {size:4d} {stages:6d} {1 / c.cache_s:11.1f} {1 / c.step_s:11.1f} {1 / c.eval_s:9.1f} "
                      f"{1 / c.full_s:8.1f} {c.bytes_per_view / 1024:8.1f} {c.setup_s:7.1f} {c.probe_s:7.1f} {load:5.1f}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
