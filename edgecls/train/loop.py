"""The training loop (the one thing written by hand here): AdamW/SGD, warmup+cosine, label smoothing, Mixup/CutMix,
EMA, gradient clipping, early stopping, per-epoch atomic checkpoints, resume, and DDP under torchrun."""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data.datasets import ArrayDataset, class_weights, load_fashion_mnist, stratified_split
from ..data.scan import load_image_folder
from ..errors import DataError, TrainError
from ..models import create_model
from ..models.pt import save_pt
from ..runtime import preprocess as _pre
from ..runtime.artifacts import atomic_write_bytes
from ..runtime.denormals import flush_denormals
from ..runtime.spec import ModelSpec, Preprocess
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .evaluate import classification_metrics, fit_temperature
from .transforms import TrainSet, augmenter


@dataclass(frozen=True)
class ModelIO:
    """How the best model is written and read back: an edgecls .pt by default; QAT keeps its own state."""

    save: Callable[[torch.nn.Module, ModelSpec, Path], object] = save_pt
    load: Callable[[Path, ModelSpec], torch.nn.Module] | None = None  # None: edgecls.models.pt.load_pt


@dataclass
class TrainResult:
    model: torch.nn.Module
    spec: ModelSpec
    metrics: dict
    out_dir: Path
    best_path: Path
    val_logits: np.ndarray | None = None  # the kept model's validation logits (the whole model on the images after
    # the finish; from cached activations for a run trained with finish=False)


EXTEND_MARGIN = 1.15  # growing a run's epochs counts each at 15% over the first one's pace (chosen, not measured)


# --- setup -----------------------------------------------------------------------------------------------
def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _limit(ds: ArrayDataset, n: int | None, seed: int) -> ArrayDataset:
    if n is None or n >= len(ds):
        return ds
    if ds.labels.ndim == 2:  # multi-label: label sets do not stratify
        from ..data.manifest import random_split

        return random_split(ds, n / len(ds), seed)[1]
    return stratified_split(ds, n / len(ds), seed)[1]  # the held-out side is a stratified sample of ~n images


def _multilabel_datasets(cfg: TrainConfig) -> tuple[ArrayDataset, ArrayDataset]:
    from ..data.manifest import load_multilabel, random_split

    full = load_multilabel(cfg.manifest or cfg.data, classes=cfg.class_list, allow_empty=cfg.allow_empty_labels,
                           strict=cfg.strict)
    if cfg.val_dir:  # its own manifest, mapped onto the training classes
        val = load_multilabel(cfg.val_dir, classes=full.classes, allow_empty=cfg.allow_empty_labels, strict=cfg.strict)
        val.skipped = [*full.skipped, *val.skipped]
        train = full
    else:
        train, val = random_split(full, cfg.val_fraction, cfg.seed)
        val.skipped = full.skipped
    absent = [c for c, n in zip(full.classes, train.labels.sum(0)) if n == 0]
    if absent:
        raise DataError(f"class(es) {absent[:10]} have no training image; every class needs positives to be learnt "
                        "(remove them from classes, or add images)")
    return train, val


def load_datasets(cfg: TrainConfig) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset | None]:
    if cfg.task == "multilabel":
        (train, val), test = _multilabel_datasets(cfg), None
    elif cfg.is_fashion_mnist:
        full, test = load_fashion_mnist("train", cfg.data_root), (load_fashion_mnist("test", cfg.data_root) if cfg.eval_test else None)
        train, val = stratified_split(full, cfg.val_fraction, cfg.seed)
    else:
        full = load_image_folder(cfg.data, strict=cfg.strict)
        if cfg.val_dir:  # mapped onto the training classes; a class folder only there is an error
            train, val = full, load_image_folder(cfg.val_dir, strict=cfg.strict, classes=full.classes)
            val.skipped = [*full.skipped, *val.skipped]
        else:
            train, val = stratified_split(full, cfg.val_fraction, cfg.seed)
            val.skipped = full.skipped
        test = None
    skipped = val.skipped
    train, val = _limit(train, cfg.limit_train, cfg.seed), _limit(val, cfg.limit_val, cfg.seed)
    val.skipped = skipped
    if len(val) == 0:
        raise DataError("the validation split is empty; add images or raise val_fraction")
    return train, val, test


def _build(cfg: TrainConfig, train: ArrayDataset):
    small_gray = cfg.is_fashion_mnist
    in_chans = cfg.in_chans or (1 if small_gray else 3)
    size = cfg.input_size or (64 if small_gray else None)
    model, spec = create_model(cfg.arch, labels=train.classes, pretrained=cfg.pretrained, in_chans=in_chans,
                               input_size=size, drop_rate=cfg.drop_rate)
    if small_gray:  # whole-image classes: stretch, no crop; normalization measured on the training images
        imgs = train.images.astype(np.float64) / 255.0
        spec = spec.replace(preprocess=Preprocess(resize_mode="stretch", crop_pct=1.0, interpolation="bilinear",
                                                  mean=(float(imgs.mean()),), std=(float(imgs.std()),), color="RGB"))
    if cfg.task == "multilabel":
        spec = spec.replace(task="multilabel")
    if cfg.mode == "linear_probe":
        head = set(map(id, model.get_classifier().parameters()))
        for p in model.parameters():
            p.requires_grad = id(p) in head
    return model, spec


def _head_ids(model: torch.nn.Module) -> set[int]:
    get = getattr(model, "get_classifier", None)
    return set(map(id, get().parameters())) if callable(get) else set()


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Parameter groups: (backbone | head) x (weights with decay | norms and biases without). The backbone's lr is
    cfg.lr * backbone_lr_mult; the schedule scales every group alike, so the ratio holds throughout."""
    head = _head_ids(model) if cfg.backbone_lr_mult != 1.0 else set()
    groups: dict[tuple[bool, bool], list] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in head, p.ndim <= 1), []).append(p)  # no weight decay on norms and biases
    param_groups = [{"params": ps, "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                     "lr": cfg.lr * (1.0 if is_head or not head else cfg.backbone_lr_mult)}
                    for (is_head, no_decay), ps in sorted(groups.items())]
    # foreach: one multi-tensor kernel per step instead of a few per parameter. On this project's 2-core machine with
    # other work running, each of PyTorch's 2-thread parallel regions waited on a descheduled thread: AdamW over
    # Lite0's stages 5-6 took 0.7 s per step per-parameter, 0.07 s foreach (same arithmetic)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, foreach=True)
    return torch.optim.AdamW(param_groups, lr=cfg.lr, foreach=True)


def _schedule(cfg: TrainConfig, opt, steps_per_epoch: int):
    """Warmup then cosine to min_lr over the run's steps. `sched.edgecls_total` holds the total as a one-item list: a
    run under a deadline shortens it when the planned epochs do not fit, and the cosine then ends where the run does
    (as Ultralytics' `time=` recomputes its epochs)."""
    total, warm = [cfg.epochs * steps_per_epoch], int(cfg.warmup_epochs * steps_per_epoch)
    floor = cfg.min_lr / cfg.lr

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total[0] - warm)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    sched.edgecls_total = total
    return sched


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, ds: ArrayDataset, spec: ModelSpec, batch_size: int = 256) -> np.ndarray:
    """Logits through exactly the Predictor's preprocessing (preprocess.fast)."""
    with flush_denormals():
        return _predict_logits(model, ds, spec, batch_size)


def _predict_logits(model, ds, spec, batch_size) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(ds), batch_size):
        x = np.concatenate([_pre.fast(ds.pixels(i), "RGB", spec) for i in range(s, min(len(ds), s + batch_size))])
        out.append(model(torch.from_numpy(x)).float().numpy())
    return np.concatenate(out)


def _teacher(cfg: TrainConfig, spec: ModelSpec, given: torch.nn.Module | None):
    """The frozen teacher; it sees the student's input tensor, so both must define that tensor the same way."""
    if given is None and not cfg.teacher:
        return None
    if given is None:
        from ..models.pt import load_pt

        given, tspec = load_pt(cfg.teacher)
        if (tspec.preprocess, tspec.input.channels) != (spec.preprocess, spec.input.channels) or tspec.labels != spec.labels:
            raise TrainError(f"teacher {cfg.teacher} takes different inputs or labels than the student "
                             f"(preprocess {tspec.preprocess} vs {spec.preprocess}; {tspec.num_classes} vs {spec.num_classes} "
                             "classes); train the teacher on the same data with edgecls")
    for p in given.parameters():
        p.requires_grad = False
    return given.eval()


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss, scaled by T^2 so its gradients keep their size as T changes."""
    t = temperature
    return torch.nn.functional.kl_div(torch.log_softmax(student / t, 1), torch.log_softmax(teacher / t, 1),
                                      reduction="batchmean", log_target=True) * (t * t)


class AsymmetricLoss(torch.nn.Module):
    """Asymmetric loss for multi-label training (Ridnik et al., ICCV 2021): negatives' probabilities are shifted down
    by `clip` and down-weighted by p^gamma_neg, so the many easy negatives of each image stop dominating the gradient."""

    def __init__(self, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05, eps: float = 1e-8):
        super().__init__()
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits)
        p_neg = (p - self.clip).clamp(min=0) if self.clip else p
        pos = y * torch.log(p.clamp(min=self.eps)) * (1 - p) ** self.gamma_pos
        neg = (1 - y) * torch.log((1 - p_neg).clamp(min=self.eps)) * p_neg ** self.gamma_neg
        return -(pos + neg).mean()


class SmoothedBCE(torch.nn.Module):
    """Binary cross-entropy on logits per label, targets smoothed to 1 - s/2 and s/2."""

    def __init__(self, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y * (1 - self.smoothing) + self.smoothing / 2 if self.smoothing else y
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y)


def val_score(logits: np.ndarray, ds: ArrayDataset) -> tuple[float, float]:
    """(the score that picks the best epoch, validation loss): top-1 and cross-entropy; multi-label: mAP and BCE."""
    if ds.labels.ndim == 2:
        from ..evaluation.multilabel import mean_ap
        from ..runtime.scores import sigmoid

        y = ds.labels.astype(bool)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(y).float())
        return mean_ap(y, sigmoid(logits)), float(bce)
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(ds.labels))
    return float((logits.argmax(1) == ds.labels).mean()), float(ce)


# --- the loop --------------------------------------------------------------------------------------------
def train(cfg: TrainConfig | dict, *, console=None, model: torch.nn.Module | None = None, spec: ModelSpec | None = None,
          teacher: torch.nn.Module | None = None, io: ModelIO = ModelIO(),
          datasets: tuple[ArrayDataset, ArrayDataset] | None = None) -> TrainResult:
    """Train `cfg.arch` from cfg, or fine-tune a given (model, spec) — a pruned or fake-quantized one — in place.

    datasets: (train, val) already loaded (e.g. by `edgecls deploy`, after its duplicate check); cfg.data and
    cfg.val_dir are then only recorded, not read.

    One run. time_limit, seeds > 1 and arch: auto are the planner's (runs.py; `edgecls.train.train` goes there)."""
    cfg = TrainConfig.from_dict(cfg) if isinstance(cfg, dict) else cfg
    if cfg.planned:
        raise TrainError("time_limit, seeds and arch: auto are planned runs: call edgecls.train.train (train/runs.py), "
                         "not the single-run loop")
    with flush_denormals():  # denormal activations made trained MobileNetV3s 4-10x slower on x86 (denormals.py)
        return run_once(cfg, console, model, spec, teacher, io, datasets)


def run_once(cfg, console, model, spec, teacher, io, datasets=None, *, deadline: float | None = None, reserve_s: float = 0.0,
           finish: bool = True, soft: tuple[np.ndarray, float, float] | None = None,
           extend_to: int | None = None) -> TrainResult:
    """One run. deadline (time.monotonic()): stop with the best epoch so far when the next epoch, or the rest of this
    one, would end later than deadline - reserve_s (the finish's share), and shorten the learning-rate schedule as
    soon as an epoch's measured time says the planned epochs do not fit. finish=False: return after the loop (the
    best epoch saved, its validation logits from the cached activations), for a caller that compares runs first.
    soft: (teacher logits per cached training image and view, kd_alpha, kd_temperature): distillation from a larger
    backbone's cached logits (cache_features only). extend_to: under a deadline, the most epochs this run may grow to
    when its first epoch shows that more than the planned ones fit (a planner's probe of a few batches, and its
    margins, can leave a large share of the limit unused)."""
    import timm.data
    import timm.loss
    import timm.utils
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..quiet import console as own_console

    cfg = TrainConfig.from_dict(cfg) if isinstance(cfg, dict) else cfg
    rank, world = _dist()
    con = console or own_console()
    say = con.print if rank == 0 else (lambda *a, **k: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _seed(cfg.seed + rank)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    if datasets is not None:
        train_ds, val_ds = datasets
        test_ds = None
        if tuple(train_ds.classes) != tuple(val_ds.classes) or len(val_ds) == 0:
            raise DataError("datasets=(train, val) need the same classes and a non-empty validation set")
        if (train_ds.labels.ndim == 2) != (cfg.task == "multilabel"):
            raise DataError(f"task={cfg.task} but the datasets' labels are "
                            f"{'multi-hot (multi-label)' if train_ds.labels.ndim == 2 else 'class indices'}")
    else:
        train_ds, val_ds, test_ds = load_datasets(cfg)
    if val_ds.skipped:
        say(f"skipped {len(val_ds.skipped)} file(s) that cannot be used: "
            + "; ".join(f"{s.path}: {s.reason}" for s in val_ds.skipped[:5]) + (" ..." if len(val_ds.skipped) > 5 else ""),
            markup=False, highlight=False)
    given_model = model
    if model is None:
        model, spec = _build(cfg, train_ds)
        if cfg.teacher:  # a new student sees exactly the teacher's input tensor (same mean/std, measured or not)
            from ..models.pt import read_pt

            tspec = ModelSpec.from_json(read_pt(cfg.teacher)["spec"])
            if tspec.input.channels == spec.input.channels:
                spec = spec.replace(preprocess=tspec.preprocess)
    elif spec is None or tuple(train_ds.classes) != spec.labels:
        raise TrainError("fine-tuning a given model needs its spec, and the data's classes must be its labels")
    elif spec.multilabel != (cfg.task == "multilabel"):
        raise TrainError(f"the given model is {spec.task} but task={cfg.task}; fine-tune it with task: {spec.task}")
    multilabel = cfg.task == "multilabel"
    metric = "val_map" if multilabel else "val_top1"
    metric_name = "val mAP" if multilabel else "val top-1"
    teacher = _teacher(cfg, spec, teacher)
    k = spec.num_classes
    device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() else torch.device("cpu")
    model.to(device).to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(device).to(memory_format=torch.channels_last)

    split, val_feats, cache_info = None, None, None
    if cfg.freeze_stages:  # partial fine-tuning (cached.py): the prefix trains no more, so it may run just once
        from .cached import freeze, split_model

        split = split_model(model, spec, cfg.freeze_stages)
        freeze(split)
    if cfg.cache_features:
        from .cached import CachedSet, cache_features

        if world > 1:
            raise TrainError("cache_features runs on one process; train without torchrun, or with cache_features: false")
        store = Path(cfg.cache_dir) if cfg.cache_dir else out / "feature_cache"
        feats, cache_info = cache_features(split, train_ds, spec, mirror=cfg.augment != "none", threads=cfg.threads,
                                           console=con if rank == 0 else None, what="training images",
                                           store=store / f"{cfg.arch}-{spec.input.height}px-s{cfg.freeze_stages}-train")
        val_feats, val_info = cache_features(split, val_ds, spec, mirror=False, threads=cfg.threads, console=con,
                                             what="validation images",
                                             store=store / f"{cfg.arch}-{spec.input.height}px-s{cfg.freeze_stages}-val")
        cache_info = {"train": cache_info, "val": val_info}
        say(f"cached {feats.shape[1]} view(s) of {len(train_ds)} + {len(val_ds)} images after stage {cfg.freeze_stages} "
            f"({cache_info['train']['runtime']}, {(feats.nbytes + val_feats.nbytes) / 2**30:.2f} GiB float16 on disk, "
            f"{cache_info['train']['seconds'] + val_info['seconds']:.0f}s"
            + (f", resumed at image {cache_info['train']['resumed_at']}" if cache_info["train"]["resumed_at"] else "") + ")")
        train_set = CachedSet(feats, train_ds.labels, None if soft is None else soft[0])
    else:
        if soft is not None:
            raise TrainError("cached teacher logits (soft) need cache_features")
        train_set = TrainSet(train_ds, spec, augmenter(cfg, spec))
    g = torch.Generator().manual_seed(cfg.seed)
    if world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(train_set, world, rank, shuffle=True, seed=cfg.seed, drop_last=True)
    elif cfg.balance == "sampler":
        w = class_weights(train_ds.labels, k)[train_ds.labels]
        sampler = torch.utils.data.WeightedRandomSampler(torch.as_tensor(w), len(w), replacement=True, generator=g)
    else:
        sampler = torch.utils.data.RandomSampler(train_set, generator=g)
    batch = min(cfg.batch_size, max(1, len(train_set) // world))
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch, sampler=sampler, num_workers=cfg.workers,
                                         drop_last=True, persistent_workers=cfg.workers > 0)
    steps = len(loader)
    if steps == 0:
        raise DataError(f"{len(train_set)} training images is fewer than one batch of {batch}")

    if cfg.head_init == "linear_probe" and given_model is None and not (cfg.resume and (out / "checkpoint.pt").is_file()):
        from .head import fit_head

        t_lp = time.perf_counter()
        lp = fit_head(model.cpu(), train_ds, spec, seed=cfg.seed)
        lp["seconds"] = time.perf_counter() - t_lp
        model.to(device).to(memory_format=torch.channels_last)
        say(f"classifier fitted on frozen features of {lp['images']} training images (train top-1 {lp['train_top1']:.4f})")
    else:
        lp = None
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if cfg.cache_features:
        net = split.tail  # the loader yields the frozen prefix's activations
    opt = _optimizer(cfg, model)
    sched = _schedule(cfg, opt, steps)
    ema = timm.utils.ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True) if cfg.ema else None
    mix = None
    if multilabel:
        loss_fn = AsymmetricLoss() if cfg.multilabel_loss == "asymmetric" else SmoothedBCE(cfg.label_smoothing)
    elif cfg.mixup > 0 or cfg.cutmix > 0:
        mix = timm.data.Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.label_smoothing, num_classes=k)
        loss_fn = timm.loss.SoftTargetCrossEntropy()
    else:
        weight = torch.as_tensor(class_weights(train_ds.labels, k), dtype=torch.float32) if cfg.balance == "loss" else None
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    ckpt_path, best_path = out / "checkpoint.pt", out / "best.pt"
    start, best, best_epoch, history = 0, -1.0, -1, []
    if cfg.resume and ckpt_path.is_file():
        st = load_checkpoint(ckpt_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        if ema is not None and st.get("ema") is not None:
            ema.module.load_state_dict(st["ema"])
        start, best, best_epoch, history = st["epoch"] + 1, st["best"], st["best_epoch"], json.loads(st["history"])
        set_rng_state(st["rng"])
        g.set_state(st["sampler_rng"])
        say(f"resumed from {ckpt_path} after epoch {start} (best {metric_name} {best:.4f})")
    say(f"training {cfg.arch} on {len(train_ds)} images ({k} {'labels, multi-label' if multilabel else 'classes'}), val {len(val_ds)}, {cfg.epochs} epochs, "
        f"batch {batch}x{world}, {device.type}, {torch.get_num_threads()} threads")

    stopped, best_logits, eval_s = None, None, 0.0
    if lp is not None and start == 0 and rank == 0:
        # the probed model is a candidate too (epoch 0): fine-tuning is kept only where it beats it on validation
        val_logits = predict_logits(model, val_ds, spec)
        best, best_epoch, best_logits = float((val_logits.argmax(1) == val_ds.labels).mean()), -1, val_logits
        io.save(model, spec.replace(metrics={"val_top1": best}), best_path)
        history.append({"epoch": 0, "loss": lp["train_loss"], "val_top1": best, "lr": 0.0, "images_per_s": 0.0,
                        "seconds": lp["seconds"], "val_loss": float(torch.nn.functional.cross_entropy(
                            torch.from_numpy(val_logits), torch.from_numpy(val_ds.labels)))})
        say(f"epoch   0 (classifier on frozen features)  val top-1 {best:.4f} *")
    epoch = start - 1
    total = [cfg.epochs]  # epochs this run will do: fewer than planned when a deadline says they do not fit
    if cfg.resume and ckpt_path.is_file():
        total[0] = int(st.get("epochs_total", cfg.epochs))
        sched.edgecls_total[0] = total[0] * steps
    epoch = start
    while epoch < total[0]:
        if world > 1:
            sampler.set_epoch(epoch)
        net.train()
        if split is not None:
            split.prefix.eval()
        if cfg.freeze_bn:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        with Progress(TextColumn(f"epoch {epoch + 1}/{total[0]}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(), console=con,
                      disable=rank != 0 or not con.is_terminal, transient=True) as bar:
            task = bar.add_task("train", total=steps, loss=0.0)
            for x, y, *t_soft in loader:
                if deadline is not None and time.monotonic() > deadline - reserve_s - eval_s:
                    stopped = f"time: the deadline came {seen} images into epoch {epoch + 1}"
                    break
                x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                y = y.to(device, non_blocking=True)
                if mix is not None:
                    x, y = mix(x, y)
                with torch.autocast(device.type, enabled=use_amp):
                    logits = net(x)
                    loss = loss_fn(logits, y)
                    if teacher is not None:
                        with torch.no_grad():
                            t_out = teacher(x)
                        loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * kd_loss(logits, t_out, cfg.kd_temperature)
                    elif t_soft:  # a larger backbone's logits for this very image and view, cached
                        _, alpha, temp = soft
                        loss = (1 - alpha) * loss + alpha * kd_loss(logits, t_soft[0].to(device), temp)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True)
                scaler.step(opt)
                scaler.update()
                sched.step()
                if ema is not None:
                    ema.update(model, step=sched.last_epoch)  # LambdaLR counts optimizer steps
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower lr or enable grad_clip")
                seen += len(x)
                loss_sum += loss.item() * len(x)
                bar.update(task, advance=1, loss=loss_sum / seen)
        train_time = time.perf_counter() - t0
        if seen == 0:  # the deadline came before this epoch's first step
            break
        if rank == 0:
            t_eval = time.perf_counter()
            evaluated = ema.module if ema is not None else model
            if cfg.cache_features:
                from .cached import tail_logits

                val_logits = tail_logits(evaluated, spec, cfg.freeze_stages, val_feats)
            else:
                val_logits = predict_logits(evaluated, val_ds, spec)
            val_top1, val_loss = val_score(val_logits, val_ds)  # multi-label: mAP
            improved = val_top1 > best
            if improved:
                best, best_epoch, best_logits = val_top1, epoch, val_logits
                io.save(evaluated, spec.replace(metrics={metric: val_top1}), best_path)
            eval_s = time.perf_counter() - t_eval
            history.append({"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), metric: val_top1, "val_loss": val_loss,
                            "lr": max(g["lr"] for g in opt.param_groups), "images_per_s": seen * world / train_time,
                            "seconds": train_time, "eval_seconds": eval_s, "images": seen * world})
            say(f"epoch {epoch + 1:3d}/{total[0]}  loss {loss_sum / max(seen, 1):.4f}  {metric_name} {val_top1:.4f}"
                f"{' *' if improved else '  '}  {seen * world / train_time:7.1f} img/s  {train_time:6.1f}s  lr {history[-1]['lr']:.2e}")
            if deadline is not None and stopped is None and epoch + 1 < total[0]:
                # the epochs that still fit, at this epoch's measured pace; the cosine is rescaled to end with them
                left = deadline - time.monotonic() - reserve_s
                fit = int(left // max(train_time + eval_s, 1e-9))
                grow = min(extend_to or 0, epoch + 1 + int(left // max(EXTEND_MARGIN * (train_time + eval_s), 1e-9)))
                if epoch == start and grow > total[0]:  # once, on the first measured epoch: the cosine is stretched
                    say(f"time limit: {grow - total[0]} more epoch(s) fit than planned at this epoch's pace; the run "
                        f"now ends after epoch {grow} (learning-rate schedule lengthened)")
                    total[0] = grow
                    sched.edgecls_total[0] = total[0] * steps
                elif epoch + 1 + fit < total[0]:
                    total[0] = epoch + 1 + max(fit, 0)
                    sched.edgecls_total[0] = total[0] * steps
                    if fit <= 0:
                        stopped = f"time: no room for epoch {epoch + 2} before the deadline"
                    say(f"time limit: {max(fit, 0)} more epoch(s) fit; the run ends after epoch {total[0]}"
                        + (" (learning-rate schedule shortened)" if fit > 0 else ""))
            save_checkpoint(ckpt_path, model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            ema=ema.module.state_dict() if ema is not None else None, epoch=epoch, best=best,
                            best_epoch=best_epoch, history=json.dumps(history), rng=rng_state(), sampler_rng=g.get_state(),
                            config=json.dumps(cfg.to_dict()), epochs_total=total[0])
        epoch += 1
        if stopped:
            say(f"stopped on time ({stopped}); keeping the best epoch so far")
            if world > 1:
                torch.distributed.barrier()
            break
        if world > 1:
            torch.distributed.barrier()
        if cfg.early_stop and epoch - 1 - best_epoch >= cfg.early_stop:
            say(f"early stop: no better {metric_name} for {cfg.early_stop} epochs")
            break
    if stopped is None and total[0] < cfg.epochs and epoch >= total[0]:  # ended where the deadline shortened it to
        stopped = (f"time: {total[0]} of the {cfg.epochs} planned epochs fit before the deadline (the learning-rate "
                   "schedule was shortened to end with them)")

    if world > 1:
        torch.distributed.destroy_process_group()
        if rank != 0:
            return TrainResult(model, spec, {}, out, best_path)
    if not best_path.is_file():
        raise TrainError(f"no epoch finished before the time limit ({stopped}); give more time, or fewer images")
    run = {"epochs_planned": cfg.epochs, "epochs_run": sum(h["epoch"] > 0 for h in history), "stopped": stopped,
           "feature_cache": cache_info}
    if not finish:
        if best_logits is None:  # the best epoch came before a resume: its logits from the saved model, on the images
            from ..models.pt import load_pt

            best_model = io.load(best_path, spec) if io.load else load_pt(best_path, spec)[0]
            best_logits = predict_logits(best_model, val_ds, spec)
        return TrainResult(model, spec, {"history": history, "best_epoch": best_epoch + 1, "best": best, **run}, out,
                           best_path, best_logits)
    if multilabel:
        return finish_multilabel(cfg, spec, best_path, val_ds, history, best_epoch, out, io, run)
    return finish_run(cfg, spec, best_path, val_ds, test_ds, history, best_epoch, out, io, teacher is not None or soft is not None, run)


def finish_run(cfg, spec, best_path, val_ds, test_ds, history, best_epoch, out, io: ModelIO, distilled: bool,
            run: dict | None = None) -> TrainResult:
    """Best weights -> temperature on val -> metrics (val, test) before/after -> plots, JSON, final best.pt."""
    from ..models.pt import load_pt
    from .plots import confusion_png, reliability_png

    model = io.load(best_path, spec) if io.load else load_pt(best_path, spec)[0]
    val_logits = predict_logits(model, val_ds, spec)
    temperature = fit_temperature(val_logits, val_ds.labels)
    eval_ds = test_ds if test_ds is not None else val_ds
    eval_name = "test" if test_ds is not None else "val"
    logits = predict_logits(model, eval_ds, spec) if test_ds is not None else val_logits
    before = classification_metrics(logits, eval_ds.labels, spec.labels)
    after = classification_metrics(logits, eval_ds.labels, spec.labels, temperature)
    summary = {
        f"{eval_name}_top1": before["top1"], f"{eval_name}_top5": before["top5"],
        f"{eval_name}_balanced_accuracy": before["balanced_accuracy"], f"{eval_name}_macro_f1": before["macro_f1"],
        f"{eval_name}_ece": before["ece"], f"{eval_name}_ece_calibrated": after["ece"],
        "val_top1": float((val_logits.argmax(1) == val_ds.labels).mean()), "best_epoch": best_epoch + 1,
        "train_seconds": float(sum(h["seconds"] for h in history)),
    }
    params = {k: v for k, v in cfg.to_dict().items() if k not in ("out_dir", "resume")}
    spec = spec.replace(temperature=temperature, metrics=summary).with_step("distill" if distilled else "train", params, summary)
    io.save(model, spec, best_path)
    full = {"summary": summary, "temperature": temperature, eval_name: before, f"{eval_name}_calibrated": after,
            "history": history, "config": cfg.to_dict(),
            "skipped": [{"path": s.path, "reason": s.reason} for s in getattr(val_ds, "skipped", [])]}
    full.update({k: v for k, v in (run or {}).items() if v is not None})
    from .mistakes import write_gallery

    full["mistakes"] = write_gallery(model, spec, val_ds, val_logits, temperature, out, cfg.mistakes)
    atomic_write_bytes(out / "metrics.json", json.dumps(full, indent=2).encode())
    confusion_png(before, spec.labels, out / "confusion.png")
    reliability_png(before, after, out / "reliability.png")
    return TrainResult(model, spec, full, out, best_path, val_logits)


def finish_multilabel(cfg, spec, best_path, val_ds, history, best_epoch, out, io: ModelIO, run: dict | None = None) -> TrainResult:
    """Best weights -> per-label thresholds for max F1 on val -> mAP, micro/macro F1 with intervals -> JSON, best.pt.

    The thresholds are fitted on the same validation images the F1 figures are then measured on, so those F1s are
    optimistic (mAP does not depend on thresholds); a separate val_dir or a test set gives unbiased F1."""
    from ..evaluation.multilabel import fit_thresholds, metrics
    from ..models.pt import load_pt
    from ..runtime.scores import sigmoid

    model = io.load(best_path, spec) if io.load else load_pt(best_path, spec)[0]
    val_logits = predict_logits(model, val_ds, spec)
    scores = sigmoid(val_logits)
    y = val_ds.labels.astype(bool)
    thresholds = fit_thresholds(y, scores)
    at_half = metrics(y, scores, spec.labels, np.full(spec.num_classes, 0.5))
    fitted = metrics(y, scores, spec.labels, thresholds)
    summary = {"val_map": fitted["map"]["value"], "val_map_interval": fitted["map"]["interval"],
               "val_micro_f1": fitted["micro_f1"]["value"], "val_macro_f1": fitted["macro_f1"]["value"],
               "val_micro_f1_at_0.5": at_half["micro_f1"]["value"], "val_n": fitted["n"], "best_epoch": best_epoch + 1,
               "train_seconds": float(sum(h["seconds"] for h in history))}
    params = {k: v for k, v in cfg.to_dict().items() if k not in ("out_dir", "resume")}
    spec = spec.replace(thresholds=tuple(float(t) for t in thresholds), metrics=summary).with_step("train", params, summary)
    io.save(model, spec, best_path)
    full = {"summary": summary, "task": "multilabel", "val": fitted, "val_at_0.5": at_half, "history": history,
            "config": cfg.to_dict(), "skipped": [{"path": s.path, "reason": s.reason} for s in getattr(val_ds, "skipped", [])]}
    full.update({k: v for k, v in (run or {}).items() if v is not None})
    atomic_write_bytes(out / "metrics.json", json.dumps(full, indent=2).encode())
    return TrainResult(model, spec, full, out, best_path, val_logits)
