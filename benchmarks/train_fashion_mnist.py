"""Train the Fashion-MNIST recipe and print the figures (test top-1, ECE before/after temperature, time).

    .venv/bin/python benchmarks/train_fashion_mnist.py [benchmarks/fashion_mnist_mnv3.yaml] [--resume]
"""

import sys

from edgecls.train import TrainConfig, train

path = next((a for a in sys.argv[1:] if a.endswith(".yaml")), "benchmarks/fashion_mnist_mnv3.yaml")
cfg = TrainConfig.from_yaml(path)
cfg.resume = "--resume" in sys.argv
r = train(cfg)
s = r.metrics["summary"]
print(f"recipe {path}: {cfg.arch} {cfg.input_size}px, {cfg.epochs} epochs")
print(f"Fashion-MNIST test top-1 {s['test_top1']:.4f}  top-5 {s['test_top5']:.4f}  balanced {s['test_balanced_accuracy']:.4f}")
print(f"ECE before {s['test_ece']:.4f} -> after temperature scaling (T={r.spec.temperature:.3f}) {s['test_ece_calibrated']:.4f}")
print(f"training time {s['train_seconds'] / 60:.1f} min; best epoch {s['best_epoch']}; model {r.best_path}")
