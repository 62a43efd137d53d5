"""TrainConfig: every training setting in one visible object, from YAML or CLI flags.

Each field carries its help text (and its choices, when it has a fixed set) in the field metadata: `edgecls train
--help` prints them, and `TrainConfig.help()` returns them for docs and reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..configfile import SettingsFile, parse_duration
from ..configfile import setting as _f
from ..errors import TrainError

OPTIMIZERS = ("adamw", "sgd")
MODES = ("full", "linear_probe")
BALANCE = ("none", "loss", "sampler")
AUGMENTS = ("auto", "none", "crop_flip", "rrc")
HEAD_INITS = ("random", "linear_probe")
TASKS = ("multiclass", "multilabel")
MULTILABEL_LOSSES = ("bce", "asymmetric")


@dataclass
class TrainConfig(SettingsFile):
    _error = TrainError  # not annotated: a class attribute, not a dataclass field
    _what = "training"
    # what to train on
    data: str = _f("fashion-mnist", "training data: 'fashion-mnist' (IDX files) or an ImageFolder path root/<class>/<images>")
    data_root: str | None = _f(None, "folder of the Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist)")
    val_dir: str | None = _f(None, "ImageFolder validation tree with the same class folders; default: a stratified "
                                   "split of `data` (val_fraction)")
    val_fraction: float = _f(0.1, "share of each class held out for validation when there is no val_dir, in (0, 1)")
    limit_train: int | None = _f(None, "use only about this many (stratified) training images: quick runs and tests")
    limit_val: int | None = _f(None, "use only about this many (stratified) validation images")
    eval_test: bool = _f(True, "Fashion-MNIST: evaluate the best model on the 10k test set at the end")
    task: str = _f("multiclass", "multiclass: one class per image (class folders, softmax); multilabel: any number of "
                                 "labels per image from a manifest (labels.csv / labels.json in the folder), sigmoid "
                                 "outputs, per-label thresholds fitted on validation for max F1", TASKS)
    manifest: str | None = _f(None, "multilabel: the training manifest (labels.csv `file,labels` with labels separated "
                                    "by ';', or labels.json {file: [labels]}); default: the one in `data`")
    classes: str | None = _f(None, "multilabel: the class list, comma-separated (YAML: a list); every manifest label must "
                                   "be one of them. Default: the sorted union of the training manifest's labels")
    allow_empty_labels: bool = _f(False, "multilabel: accept manifest images with no label (pictures showing none of the "
                                         "classes); off, such a row is an error (a forgotten label)")
    multilabel_loss: str = _f("bce", "multilabel: bce (binary cross-entropy per label) or asymmetric (Ridnik et al. "
                                     "2021: gamma_neg 4, gamma_pos 0, negatives' probability shifted by 0.05; for many "
                                     "labels with few positives each)", MULTILABEL_LOSSES)
    strict: bool = _f(False, "ImageFolder: stop with an error listing unreadable or non-image files instead of "
                             "skipping them (they are listed either way)")
    # the model
    arch: str = _f("mobilenetv3_small_100", "architecture name, see `edgecls archs`; auto: train each candidate with "
                                            "ImageNet weights here (EfficientNet-Lite0/1/2, MobileNetV3 when its weights "
                                            "are cached) on the same split and keep the most accurate by the paired test")
    pretrained: bool = _f(False, "start from ImageNet weights (offline for efficientnet_lite0); the head is new")
    mode: str = _f("full", "full: train every layer; linear_probe: freeze the backbone, train the classifier only", MODES)
    input_size: int | None = _f(None, "input side in pixels; default 64 for Fashion-MNIST, the arch's own (224) for folders; "
                                       "under time_limit, the largest side the planner may choose")
    in_chans: int | None = _f(None, "input channels, 1 or 3; default 1 for Fashion-MNIST, 3 otherwise")
    drop_rate: float = _f(0.0, "dropout before the classifier, in [0, 1)")
    head_init: str = _f("random", "random: a fresh classifier; linear_probe: first fit the classifier on frozen "
                                  "pretrained features of the training images (LP-FT), so fine-tuning starts from a "
                                  "head that is already right and does not distort the features", HEAD_INITS)
    freeze_stages: int = _f(0, "partial fine-tuning: N >= 1 keeps the stem and the first N stages (model.blocks[:N]: 7 in "
                               "EfficientNet-Lite and MobileNetV3-Large, 6 in -Small) frozen, BatchNorm statistics "
                               "included, and trains the rest; 0: train every layer")
    cache_features: bool = _f(False, "with freeze_stages: run the frozen layers once per image (and once per mirror image "
                                     "unless augment is none), keep their output in RAM as float16 and train the rest on "
                                     "it; no other augmentation applies")
    # optimisation
    epochs: int = _f(10, "passes over the training images (early_stop may end sooner); under time_limit, the most the "
                         "planner gives (time beyond them goes to more seeds)")
    batch_size: int = _f(128, "images per optimizer step (per process under DDP); capped at the training set size")
    optimizer: str = _f("adamw", "adamw or sgd (Nesterov momentum)", OPTIMIZERS)
    lr: float = _f(2e-3, "peak learning rate (of the classifier head when backbone_lr_mult is not 1)")
    backbone_lr_mult: float = _f(1.0, "learning rate of every layer but the classifier, as a multiple of lr: below 1 "
                                      "fine-tunes pretrained features gently (e.g. 0.1), 1 trains all layers alike")
    min_lr: float = _f(1e-5, "learning rate at the end of the cosine schedule")
    weight_decay: float = _f(0.05, "decoupled weight decay on weights (never on norms and biases); small (<= 1e-4) "
                                   "or 0 keeps a pretrained model near its starting point")
    momentum: float = _f(0.9, "momentum of optimizer sgd (adamw ignores it), in [0, 1)")
    warmup_epochs: float = _f(1.0, "linear learning-rate warmup, in epochs (fractions allowed)")
    grad_clip: float | None = _f(2.0, "clip the gradient norm to this value; null/0 turns it off")
    freeze_bn: bool = _f(False, "keep BatchNorm statistics as they are: fine-tuning a converged or fake-quantized model, "
                                "or a pretrained one on a few hundred images")
    label_smoothing: float = _f(0.1, "label smoothing of the cross-entropy, in [0, 1); multilabel: targets become "
                                     "1 - s/2 and s/2")
    balance: str = _f("none", "class imbalance: none, loss (inverse-frequency class weights) or sampler (balanced "
                              "sampling with replacement)", BALANCE)
    # augmentation
    augment: str = _f("auto", "auto: rrc for photo folders, crop_flip for Fashion-MNIST; none; crop_flip (reflect-pad "
                              "and random-crop each image at its own size, plus flip: small images); rrc "
                              "(RandomResizedCrop to the input size, plus flip: photos)", AUGMENTS)
    rrc_scale: float = _f(0.25, "rrc: smallest share of the image area a random crop keeps, in (0, 1]")
    randaugment: int = _f(0, "RandAugment magnitude 1-30; 0 = off")
    random_erasing: float = _f(0.0, "probability of RandomErasing per image, in [0, 1]")
    mixup: float = _f(0.0, "Mixup: Beta(alpha, alpha) mixing of image pairs and their labels; 0 = off, 0.2-0.8 typical")
    cutmix: float = _f(0.0, "CutMix: pastes a patch of another image, labels mixed by area; Beta alpha, 0 = off, 1.0 typical")
    # knowledge distillation: loss = (1 - kd_alpha) * CE + kd_alpha * T^2 * KL(student/T || teacher/T)
    teacher: str | None = _f(None, "distil from this edgecls .pt (same preprocessing and labels as the student)")
    kd_alpha: float = _f(0.7, "weight of the distillation term in [0, 1]")
    kd_temperature: float = _f(4.0, "softmax temperature of the distillation term, > 0")
    # the budget: what fits on this machine
    time_limit: str | None = _f(None, "wall-clock budget of the run on this machine: 45m, 1h30m, 2700 (seconds). edgecls "
                                      "times a few batches of each candidate setting first, then chooses the input size, "
                                      "how many stages stay frozen and cached, how many training images, epochs and seeds "
                                      "(and which backbones to compare, with arch: auto), and stops on time with the best "
                                      "validated model; metrics.json holds the plan, predicted and actual time")
    seeds: int | None = _f(None, "train this many seeds on the same split (cached activations are shared); the best on "
                                 "validation is kept and the spread across seeds is reported beside the per-image "
                                 "interval (default 1, or the planner's choice under time_limit)")
    cache_dir: str | None = _f(None, "folder of the cached activations (float16, memory-mapped, resumable; default "
                                     "OUT_DIR/feature_cache); runs with the same images, weights and split reuse it")
    # averaging, stopping, reproducibility, output
    ema: bool = _f(True, "evaluate and keep an exponential moving average of the weights")
    ema_decay: float = _f(0.999, "EMA decay per optimizer step, in (0, 1); it averages over ~1/(1-decay) steps, so "
                                 "keep that well under the run's total steps")
    early_stop: int | None = _f(None, "stop after this many epochs without a better validation top-1")
    seed: int = _f(0, "seed of every random generator (data order, augmentation, splits, initialization)")
    threads: int | None = _f(None, "PyTorch CPU threads (default: PyTorch's own)")
    workers: int = _f(0, "data-loading worker processes (0: in the training process)")
    mistakes: int = _f(8, "the training report's gallery: this many most confident wrong validation predictions with "
                          "their Grad-CAM maps (mistakes.png, mistakes/; needs the robustness extra); 0 = off")
    out_dir: str = _f("runs/train", "folder for checkpoint.pt, best.pt, metrics.json and the plots")
    resume: bool = _f(False, "continue from out_dir/checkpoint.pt after a crash or kill (same settings)")

    def __post_init__(self) -> None:
        if isinstance(self.classes, (list, tuple)):
            self.classes = ",".join(str(c) for c in self.classes)
        ml = self.task == "multilabel"
        checks = [
            (self.task in TASKS, f"task={self.task!r}: use multiclass or multilabel"),
            (self.multilabel_loss in MULTILABEL_LOSSES, f"multilabel_loss={self.multilabel_loss!r}: use bce or asymmetric"),
            (ml or not (self.manifest or self.classes or self.allow_empty_labels or self.multilabel_loss != "bce"),
             "manifest, classes, allow_empty_labels and multilabel_loss are multilabel settings: set task: multilabel, "
             "or leave them out (multiclass data is class folders)"),
            (not ml or not self.is_fashion_mnist, "task multilabel needs a folder with a labels manifest, not Fashion-MNIST"),
            (not ml or not (self.mixup or self.cutmix), "mixup and cutmix mix one class per image; for multilabel set them "
                                                        "to 0"),
            (not ml or self.balance == "none", "balance weighs single classes; for multilabel use balance: none (and "
                                               "multilabel_loss: asymmetric for labels with few positives)"),
            (not ml or self.head_init == "random", "head_init linear_probe fits a softmax classifier; for multilabel use "
                                                   "head_init: random"),
            (not ml or not self.teacher, "distillation (teacher) matches softmax outputs; it does not take multilabel"),
            (self.optimizer in OPTIMIZERS, f"optimizer={self.optimizer!r}: use 'adamw' or 'sgd'"),
            (self.mode in MODES, f"mode={self.mode!r}: use 'full' or 'linear_probe'"),
            (self.balance in BALANCE, f"balance={self.balance!r}: use none, loss or sampler"),
            (self.augment in AUGMENTS, f"augment={self.augment!r}: use auto, none, crop_flip or rrc"),
            (self.head_init in HEAD_INITS, f"head_init={self.head_init!r}: use random or linear_probe"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.lr > 0 and self.min_lr >= 0, "lr must be > 0 and min_lr >= 0"),
            (self.backbone_lr_mult >= 0, "backbone_lr_mult must be >= 0 (0 freezes the backbone's weights)"),
            (0 < self.rrc_scale <= 1, "rrc_scale must be in (0, 1]"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 < self.ema_decay < 1, "ema_decay must be in (0, 1)"),
            (self.in_chans in (None, 1, 3), "in_chans must be 1 or 3"),
            (0 <= self.kd_alpha <= 1 and self.kd_temperature > 0, "kd_alpha must be in [0, 1] and kd_temperature > 0"),
            (self.mistakes >= 0, "mistakes must be >= 0 (0 turns the gallery off)"),
            (self.freeze_stages >= 0, "freeze_stages must be >= 0 (0 = train every layer)"),
            (self.seeds is None or (isinstance(self.seeds, int) and 1 <= self.seeds <= 50),
             f"seeds={self.seeds!r}: train 1 to 50 seeds"),
            (not (self.freeze_stages and self.mode == "linear_probe"), "freeze_stages and mode=linear_probe both choose what trains; use one"),
            (not self.cache_features or self.freeze_stages > 0, "cache_features needs freeze_stages >= 1 (the layers whose output is cached)"),
            (not self.cache_features or not (self.randaugment or self.random_erasing or self.mixup or self.cutmix or self.teacher),
             "cache_features stores each image's activations once (plus its mirror): randaugment, random_erasing, mixup, "
             "cutmix and teacher need the images at every step; set them off or cache_features: false"),
        ]
        for ok, msg in checks:
            if not ok:
                raise TrainError(f"bad training config: {msg}")
        parse_duration(self.time_limit, TrainError)  # 45m, 1h30m, 2700: checked now, not when training starts

    @property
    def planned(self) -> bool:
        """A time limit, several seeds or arch auto: the planner's runs (runs.py), not one run of the loop."""
        return bool(self.time_limit) or (self.seeds or 1) > 1 or self.arch == "auto"

    @property
    def time_limit_s(self) -> float | None:
        """time_limit in seconds (None: no limit)."""
        return parse_duration(self.time_limit, TrainError)

    @property
    def is_fashion_mnist(self) -> bool:
        return self.data.lower() in ("fashion-mnist", "fashion_mnist", "fashionmnist")

    @property
    def class_list(self) -> tuple[str, ...] | None:
        """The `classes` setting as a tuple (None: from the data)."""
        if not self.classes:
            return None
        return tuple(c.strip() for c in self.classes.split(","))

    @property
    def augmentation(self) -> str:
        """The augmentation `augment` resolves to for this data."""
        if self.augment != "auto":
            return self.augment
        return "crop_flip" if self.is_fashion_mnist else "rrc"
