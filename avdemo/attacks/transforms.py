"""Random input transformations for attacks that average over transformed copies (ICLR 2025, §4.1).

"We apply different input transformations on temporal inputs, including scaling, masking,
blurring, and mix-up on audio or visual modalities, independently or in parallel, synchronously
or asynchronously." The paper gives no parameters; these are ours:

- `scale`: multiply the input by 2^-u, u ~ U[0, 2] (the scale-invariance copies of SIM, in [1/4, 1]);
- `mask`: hide a share ~ U[0.05, 0.2] of the clip's time (`avdemo.data.masking`, 20 windows);
- `blur`: Gaussian blur of sigma ~ U[0.5, 1.5] (pixels for frames; samples for the waveform,
  a low-pass around 11025 / (2 pi sigma) = 1.2-3.5 kHz);
- `mixup`: (1 - eta) x + eta x', eta ~ U[0, 0.2], with x' the next clip of the batch, or the clip
  itself shifted by half its length in time when the batch has one clip.

`modality` says which inputs a transformation touches ("audio", "visual" or "both"; the other is
returned as it is); with both, `synchronous` draws once for both (the same factor, the same masked
moments, the same partner and weight) and otherwise draws for each. Parameters are drawn once per
call for the whole batch (one copy), except the masked windows, which are drawn per clip. Every
transformation is differentiable and keeps waveform in [-1, 1] and pixels in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..data.masking import temporal_mask

Transform = Callable[[torch.Tensor, torch.Tensor, str, bool, "torch.Generator | None"], tuple[torch.Tensor, torch.Tensor]]
TRANSFORMS: dict[str, Transform] = {}


def _register(function: Transform) -> Transform:
    TRANSFORMS[function.__name__] = function
    return function


def check_transforms(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names, checked against `TRANSFORMS` (a clear error otherwise)."""
    unknown = [name for name in names if name not in TRANSFORMS]
    if unknown or not names:
        raise ValueError(f"unknown input transformations {unknown}; choose from {sorted(TRANSFORMS)}")
    return tuple(names)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _draws(modality: str, synchronous: bool, draw: Callable[[], float]) -> dict[str, float]:
    """One parameter per touched modality: a single draw shared by both when synchronous."""
    touched = ("audio", "visual") if modality == "both" else (modality,)
    shared = draw() if synchronous else None
    return {m: shared if shared is not None else draw() for m in touched}


def _apply(waveform: torch.Tensor, frames: torch.Tensor, values: dict[str, float],
           audio: Callable[[torch.Tensor, float], torch.Tensor], visual: Callable[[torch.Tensor, float], torch.Tensor]):
    return (audio(waveform, values["audio"]) if "audio" in values else waveform,
            visual(frames, values["visual"]) if "visual" in values else frames)


@_register
def scale(waveform, frames, modality, synchronous, generator):
    factors = _draws(modality, synchronous, lambda: 2.0 ** -_uniform(0.0, 2.0, generator))
    return _apply(waveform, frames, factors, lambda x, f: x * f, lambda x, f: x * f)


@_register
def mask(waveform, frames, modality, synchronous, generator):
    share = _uniform(0.05, 0.2, generator)
    return temporal_mask(waveform, frames, share, modality, synchronous, generator=generator)


def _gaussian_kernel(sigma: float, device, dtype) -> torch.Tensor:
    radius = max(1, math.ceil(2 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def blur_waveform(waveform: torch.Tensor, sigma: float) -> torch.Tensor:
    """Waveform `(B, L)` smoothed by a Gaussian of `sigma` samples (reflected at the ends)."""
    kernel = _gaussian_kernel(sigma, waveform.device, waveform.dtype)
    padded = F.pad(waveform[:, None], (len(kernel) // 2,) * 2, mode="reflect")
    return F.conv1d(padded, kernel.view(1, 1, -1))[:, 0]


def blur_frames(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Frames `(B, T, 3, H, W)` blurred by a separable Gaussian of `sigma` pixels (reflected)."""
    kernel = _gaussian_kernel(sigma, frames.device, frames.dtype)
    pad = len(kernel) // 2
    images = frames.flatten(0, 2)[:, None]  # (B T 3, 1, H, W)
    images = F.conv2d(F.pad(images, (pad, pad, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    images = F.conv2d(F.pad(images, (0, 0, pad, pad), mode="reflect"), kernel.view(1, 1, -1, 1))
    return images[:, 0].view_as(frames)


@_register
def blur(waveform, frames, modality, synchronous, generator):
    sigmas = _draws(modality, synchronous, lambda: _uniform(0.5, 1.5, generator))
    return _apply(waveform, frames, sigmas, blur_waveform, blur_frames)


def _partner(x: torch.Tensor) -> torch.Tensor:
    """The next clip of the batch; with one clip, the clip shifted by half its length in time
    (dim 1: samples of a waveform, frames of a clip)."""
    return x.roll(1, dims=0) if len(x) > 1 else x.roll(x.shape[1] // 2, dims=1)


@_register
def mixup(waveform, frames, modality, synchronous, generator):
    weights = _draws(modality, synchronous, lambda: _uniform(0.0, 0.2, generator))
    mix = lambda x, eta: (1 - eta) * x + eta * _partner(x)  # noqa: E731
    return _apply(waveform, frames, weights, mix, mix)


def transform_copy(name: str, waveform: torch.Tensor, frames: torch.Tensor, modality: str = "both",
                   synchronous: bool = True, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One randomly transformed copy of (waveform `(B, L)` in [-1, 1], frames `(B, T, 3, H, W)` in
    [0, 1]) under the transformation `name`; same shapes and ranges, differentiable."""
    return TRANSFORMS[name](waveform, frames, modality, synchronous, generator)
