"""Numbers that summarise an attack: how perceptible the perturbation is, and how robust a
model is (the CVPR 2021 paper's Avg and RI).

Perceptibility (see `../shared/reference-notes.md`): for images the L-inf norm in /255
units, PSNR and SSIM; for audio the SNR, 20 log10(||x|| / ||delta||), and dB_x(delta) =
dB(delta) - dB(x) with dB(v) = 20 log10 max|v_i| (Carlini & Wagner's measure).
"""

from __future__ import annotations

import math

import numpy as np


def linf_255(delta: np.ndarray) -> float:
    """Largest pixel change, in grey levels out of 255 (delta in [0, 1] pixel units)."""
    return float(np.abs(delta).max()) * 255 if delta.size else 0.0


def psnr(clean: np.ndarray, adversarial: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]; +inf when identical."""
    mse = float(np.mean((np.asarray(clean, np.float64) - np.asarray(adversarial, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(clean: np.ndarray, adversarial: np.ndarray, window: int = 7) -> float:
    """Mean structural similarity of two images `(H, W, 3)` or `(H, W)` in [0, 1]: per channel
    over `window` x `window` uniform windows (the scikit-image defaults), then averaged."""
    from scipy.ndimage import uniform_filter

    x = np.asarray(clean, np.float64)
    y = np.asarray(adversarial, np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = 0.01**2, 0.03**2
    scores = []
    for channel in range(x.shape[-1]):
        a, b = x[..., channel], y[..., channel]
        mean = lambda v: uniform_filter(v, size=window)  # noqa: E731
        mu_a, mu_b = mean(a), mean(b)
        correction = window * window / (window * window - 1)  # sample covariance, as scikit-image
        var_a = (mean(a * a) - mu_a**2) * correction
        var_b = (mean(b * b) - mu_b**2) * correction
        cov = (mean(a * b) - mu_a * mu_b) * correction
        index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        pad = (window - 1) // 2
        scores.append(index[pad:-pad, pad:-pad].mean())
    return float(np.mean(scores))


def snr_db(signal: np.ndarray, perturbation: np.ndarray) -> float:
    """20 log10(||x|| / ||delta||) in dB; +inf when nothing was added."""
    noise = float(np.linalg.norm(perturbation))
    if noise == 0:
        return math.inf
    return 20 * math.log10(max(float(np.linalg.norm(signal)), 1e-12) / noise)


def db_x(signal: np.ndarray, perturbation: np.ndarray) -> float:
    """dB(delta) - dB(x), dB(v) = 20 log10 max|v|; -inf when nothing was added."""
    peak = float(np.abs(perturbation).max()) if perturbation.size else 0.0
    if peak == 0:
        return -math.inf
    return 20 * math.log10(peak) - 20 * math.log10(max(float(np.abs(signal).max()), 1e-12))


def average_attacked(attacked_audio: float, attacked_visual: float, attacked_both: float) -> float:
    """Avg = (✗A + ✗V + ✗AV) / 3 (accuracies, any consistent unit)."""
    return (attacked_audio + attacked_visual + attacked_both) / 3


def relative_improvement(clean: float, average: float, base_clean: float, base_average: float) -> float:
    """RI = (✓AV_m + Avg_m) - (✓AV_n + Avg_n): a defense m against the undefended base n; it
    penalises a defense that buys robustness with clean accuracy (the modality-bias shortcut)."""
    return (clean + average) - (base_clean + base_average)
