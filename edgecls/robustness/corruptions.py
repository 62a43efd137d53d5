"""Common corruptions in the style of ImageNet-C (Hendrycks & Dietterich 2019), from albumentations' transforms.

Why albumentations and not `imagecorruptions` (the ImageNet-C code as a package): imagecorruptions 1.1.2 (2020) does not
run with this project's pins. It imports `pkg_resources` (gone from setuptools >= 81), fog uses `np.float_` (removed in
numpy 2), gaussian/glass blur pass `multichannel=` (removed from scikit-image), frost picks one of six frost photos but
ships four (a crash one call in five), and it requires `opencv-python`, which clashes with our opencv-python-headless.

Each corruption takes ImageNet-C's own severity constants where the albumentations transform has the same parameter
(noise std, salt-and-pepper amount, photon count, defocus radius, glass-blur sigma/delta/iterations, zoom factors, JPEG
quality, pixelation factor, brightness and contrast factors); where it has not (snow, fog), severities 1-5 are
evenly spaced over the transform's own default range. Frost is left out (it needs ImageNet-C's frost photographs).
The 14 in DEFAULT are ImageNet-C's 15 "common" corruptions less frost; EXTRA are opt-in.

Resolution: corruptions are applied to the picture at its own resolution, BEFORE the Predictor's resize/crop, as a
camera delivers a blurred or noisy frame. ImageNet-C's spatial constants (blur radii and sigmas, motion length, glass
displacement) are in pixels of a ~224-px image, so they are scaled by short_side / 224 for each
picture (a 32-px CIFAR image gets ~1/7 of them, close to CIFAR-10-C's own constants; a 1080p frame ~5x). Per-pixel
noise is not scaled: a sensor's noise is per pixel, and downscaling a large frame averages it, as it does on a device.

Randomness: every call takes an explicit seed (albumentations' own generator is reseeded per image), so a corrupted
image depends only on (image, corruption, severity, seed): runs are reproducible and every artifact sees the same pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import CorruptionError, require
from ..runtime.opencv import load_cv2

SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_SIDE = 224  # ImageNet-C's spatial constants are for pictures of this size


def _albumentations():
    # albumentations asks PyPI for a newer version on import (2 s timeout, a warning offline); a robustness run must
    # not depend on the network, so it is off unless the user set the variable themselves
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    return require("albumentations", "robustness")


def _odd(x: float, lo: int = 3) -> int:
    k = max(lo, int(round(x)))
    return k if k % 2 else k + 1


@dataclass(frozen=True)
class Corruption:
    name: str
    family: str  # noise | blur | weather | digital | camera
    build: Callable[[Any, int, float, tuple[int, int]], Any]  # (albumentations, severity, scale, (h, w)) -> transform
    source: str  # where the severity constants come from


def _gauss_noise(A, s, _k, _hw):
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[s - 1]
    return A.GaussNoise(std_range=(c, c), mean_range=(0.0, 0.0), per_channel=True, p=1.0)


def _shot_noise(A, s, _k, _hw):
    photons = (60, 25, 12, 5, 3)[s - 1]
    return A.ShotNoise(scale_range=(1.0 / photons, 1.0 / photons), p=1.0)


def _impulse_noise(A, s, _k, _hw):
    c = (0.03, 0.06, 0.09, 0.17, 0.27)[s - 1]
    return A.SaltAndPepper(amount=(c, c), salt_vs_pepper=(0.5, 0.5), p=1.0)


def _defocus(A, s, k, _hw):
    r, a = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[s - 1]
    r = max(1, int(round(r * k)))
    return A.Defocus(radius=(r, r), alias_blur=(a, a), p=1.0)


def _glass(A, s, k, _hw):
    sigma, delta, it = ((0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[s - 1]
    return A.GlassBlur(sigma=sigma * k, max_delta=max(1, int(round(delta * k))), iterations=it, p=1.0)


def _motion(A, s, k, _hw):
    sigma = (3, 5, 8, 12, 15)[s - 1]  # ImageNet-C's Gaussian-weighted streak; a uniform line of ~2 sigma here
    n = _odd(2 * sigma * k + 1)
    return A.MotionBlur(blur_limit=(n, n), angle_range=(0, 360), allow_shifted=False, p=1.0)


def _zoom(A, s, _k, _hw):
    top, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[s - 1]
    return A.ZoomBlur(max_factor=(top, top), step_factor=(step, step), p=1.0)


def _gaussian_blur(A, s, k, _hw):
    sigma = (1, 2, 3, 4, 6)[s - 1] * k
    return A.GaussianBlur(blur_limit=0, sigma_limit=(sigma, sigma), p=1.0)


def _snow(A, s, _k, _hw):
    v = np.linspace(0.1, 0.3, 5)[s - 1]
    return A.RandomSnow(snow_point_range=(float(v), float(v)), method="texture", p=1.0)


def _fog(A, s, _k, _hw):
    v = np.linspace(0.3, 1.0, 5)[s - 1]
    return A.RandomFog(fog_coef_range=(float(v), float(v)), p=1.0)


def _brightness(A, s, _k, _hw):
    v = (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1] * 255  # ImageNet-C adds c to HSV value
    return A.HueSaturationValue(hue_shift_limit=(0, 0), sat_shift_limit=(0, 0), val_shift_limit=(v, v), p=1.0)


def _contrast(A, s, _k, _hw):
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[s - 1]  # (x - mean) * c + mean
    return A.ColorJitter(brightness=(1, 1), contrast=(c, c), saturation=(1, 1), hue=(0, 0), p=1.0)


def _elastic(A, s, _k, hw):
    a = (0.05, 0.065, 0.085, 0.1, 0.12)[s - 1] * 250  # ImageNet-C: uniform(+-0.005 H) smoothed by 0.01 H, times a
    h = hw[0]
    return A.ElasticTransform(alpha=a * 0.005 * h, sigma=max(1.0, 0.01 * h), noise_distribution="uniform",
                              border_mode=4, p=1.0)  # cv2.BORDER_REFLECT_101, as ImageNet-C's mode="reflect"


def _pixelate(A, s, _k, _hw):
    cv2 = load_cv2()

    c = (0.6, 0.5, 0.4, 0.3, 0.25)[s - 1]
    return A.Downscale(scale_range=(c, c), interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_NEAREST}, p=1.0)


def _jpeg(A, s, _k, _hw):
    q = (25, 18, 15, 10, 7)[s - 1]
    return A.ImageCompression(compression_type="jpeg", quality_range=(q, q), p=1.0)


def _low_light(A, s, _k, _hw):
    gamma = (150, 200, 250, 300, 350)[s - 1]  # x ** 1.5 .. x ** 3.5 on [0, 1]: dim the scene, then sensor noise
    photons = (60, 40, 25, 15, 10)[s - 1]
    return A.Compose([A.RandomGamma(gamma_limit=(gamma, gamma), p=1.0),
                      A.ShotNoise(scale_range=(1.0 / photons, 1.0 / photons), p=1.0)], p=1.0)


_IMAGENET_C = "ImageNet-C constants"
_TABLE = (
    Corruption("gaussian_noise", "noise", _gauss_noise, _IMAGENET_C),
    Corruption("shot_noise", "noise", _shot_noise, _IMAGENET_C + " (photons per unit, in linear light)"),
    Corruption("impulse_noise", "noise", _impulse_noise, _IMAGENET_C),
    Corruption("defocus_blur", "blur", _defocus, _IMAGENET_C + ", scaled"),
    Corruption("glass_blur", "blur", _glass, _IMAGENET_C + ", scaled"),
    Corruption("motion_blur", "blur", _motion, "line of 2x ImageNet-C's sigma, scaled"),
    Corruption("zoom_blur", "blur", _zoom, _IMAGENET_C),
    Corruption("snow", "weather", _snow, "albumentations' default range"),
    Corruption("fog", "weather", _fog, "albumentations' default range"),
    Corruption("brightness", "digital", _brightness, _IMAGENET_C),
    Corruption("contrast", "digital", _contrast, _IMAGENET_C),
    Corruption("elastic_transform", "digital", _elastic, _IMAGENET_C + " (relative to the height)"),
    Corruption("pixelate", "digital", _pixelate, _IMAGENET_C),
    Corruption("jpeg_compression", "digital", _jpeg, _IMAGENET_C),
    # opt-in: an ImageNet-C validation corruption, and a camera one ImageNet-C lacks
    Corruption("gaussian_blur", "blur", _gaussian_blur, _IMAGENET_C + " (validation set), scaled"),
    Corruption("low_light", "camera", _low_light, "gamma 1.5-3.5 then shot noise (not in ImageNet-C)"),
)
CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in _TABLE}
DEFAULT = tuple(c.name for c in _TABLE[:14])
EXTRA = tuple(c.name for c in _TABLE[14:])


def check_names(names) -> tuple[str, ...]:
    """The corruption names, validated; None or empty means DEFAULT."""
    if not names:
        return DEFAULT
    if isinstance(names, str):
        names = (names,)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise CorruptionError(f"unknown corruption(s) {unknown}; choose from {', '.join(CORRUPTIONS)} "
                              f"(default: the {len(DEFAULT)} ImageNet-C common ones)")
    return tuple(dict.fromkeys(names))


def check_severities(severities) -> tuple[int, ...]:
    """Severities as a sorted tuple of ints in 1-5; None means all five."""
    if severities is None:
        return SEVERITIES
    if isinstance(severities, (int, np.integer)):
        severities = (severities,)
    out = []
    for s in severities:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= 5:
            raise CorruptionError(f"severity {s!r} is out of range: severities are the integers 1 (mild) to 5 (strong), "
                                  "as in ImageNet-C")
        out.append(int(s))
    if not out:
        raise CorruptionError("no severity given; pass integers in 1-5 (e.g. 1 3 5)")
    return tuple(sorted(set(out)))


def parse_severities(text: str) -> tuple[int, ...]:
    """'1-5', '3', '1,3,5' or '1 3 5' -> (1, ..., 5); anything else is a CorruptionError."""
    parts = [p for p in str(text).replace(",", " ").split() if p]
    out: list[int] = []
    try:
        for p in parts:
            if "-" in p[1:]:
                lo, hi = p.split("-", 1)
                if int(lo) > int(hi):
                    raise CorruptionError(f"severity range {p!r} runs backwards; write it low-high, e.g. 1-5")
                out += range(int(lo), int(hi) + 1)
            else:
                out.append(int(p))
    except ValueError:
        raise CorruptionError(f"cannot read severities {text!r}; write e.g. 1-5, 3 or 1,3,5") from None
    return check_severities(out)


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """One corruption of an RGB (or grey) uint8 HxW[xC] image at its own resolution; deterministic given `seed`."""
    (name,) = check_names((name,))
    (severity,) = check_severities(severity)
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or min(img.shape[:2]) < 8:
        raise CorruptionError(f"corruptions take uint8 HxW or HxWxC images of at least 8x8 pixels; got {img.dtype} {img.shape}")
    grey = img.ndim == 2 or img.shape[2] == 1
    rgb = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2) if grey else np.ascontiguousarray(img)
    scale = min(rgb.shape[:2]) / REFERENCE_SIDE
    transform = CORRUPTIONS[name].build(_albumentations(), severity, scale, rgb.shape[:2])
    transform.set_random_seed(int(seed))
    out = transform(image=rgb)["image"]
    if out.shape != rgb.shape or out.dtype != np.uint8:
        raise CorruptionError(f"{name} returned {out.dtype} {out.shape} for a {rgb.shape} image")  # an albumentations change
    return out[..., :1].reshape(img.shape) if grey else out


def image_seed(seed: int, name: str, severity: int, index: int) -> int:
    """A seed per (run seed, corruption, severity, image): independent draws, the same in every run and for every model."""
    import zlib

    return int(np.random.SeedSequence([int(seed), zlib.crc32(name.encode()), int(severity), int(index)]).generate_state(1)[0])
