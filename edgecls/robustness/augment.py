"""Training pictures under common corruptions: what QAT (or a fine-tune) should see when the field's pictures are
low-contrast, noisy or blurred, made by the same corruption code `edgecls eval --corruptions` measures with.

Each read of a training image is corrupted with probability p by one of the named corruptions at a severity drawn
from `severities`; draws depend on (seed, image, how often that image was read), so a run is reproducible and an
image looks different in every epoch.
"""

from __future__ import annotations

import numpy as np

from ..data.datasets import ArrayDataset
from ..errors import CorruptionError
from .corruptions import SEVERITIES, check_names, check_severities, corrupt, image_seed


class CorruptedTrainingSet(ArrayDataset):
    """An ArrayDataset whose image(i) is corrupted with probability p (see corruption_augmented)."""

    names: tuple[str, ...]
    severities: tuple[int, ...]
    p: float
    seed: int

    def _setup(self, names, severities, p, seed) -> CorruptedTrainingSet:
        self.names, self.severities, self.p, self.seed = names, severities, p, seed
        self._reads = np.zeros(len(self.labels), np.int64)
        return self

    def subset(self, idx) -> CorruptedTrainingSet:
        plain = ArrayDataset.subset(self, idx)
        return CorruptedTrainingSet(plain.images, plain.labels, plain.classes)._setup(self.names, self.severities, self.p, self.seed)

    def image(self, i: int) -> np.ndarray:
        img = super().image(i)
        k = int(self._reads[i])
        self._reads[i] += 1
        rng = np.random.default_rng([self.seed, int(i), k])
        if rng.random() >= self.p:
            return img
        name = self.names[int(rng.integers(len(self.names)))]
        severity = int(self.severities[int(rng.integers(len(self.severities)))])
        return corrupt(img, name, severity, image_seed(self.seed, name, severity, int(i) * 1_000_003 + k))


def corruption_augmented(ds: ArrayDataset, corruptions, *, p: float = 0.5, severities=SEVERITIES,
                         seed: int = 0) -> CorruptedTrainingSet:
    """`ds` (the trainer's ArrayDataset) with each read corrupted with probability p by one of `corruptions` (names
    from edgecls.robustness.CORRUPTIONS) at one of `severities` (1-5). Unknown names, severities outside 1-5 and
    p outside (0, 1] are CorruptionErrors."""
    if not corruptions:
        raise CorruptionError("name at least one corruption to augment with (e.g. contrast)")
    names = check_names(corruptions)
    sev = check_severities(severities)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise CorruptionError(f"corruption probability p={p!r} must be in (0, 1]")
    return CorruptedTrainingSet(ds.images, ds.labels, ds.classes, list(ds.skipped))._setup(names, sev, float(p), int(seed))


__all__ = ["CorruptedTrainingSet", "corruption_augmented"]
