"""Temporal segments: the waveform cut into one window per frame.

A clip's T frames sit at the centres of T equal parts of its window (see `avdemo.media.
decode_clip` and `avdemo.data.synth.render_clip`), so the audio heard "at frame t" is the
part of the waveform centred on that frame's time. Each window is `L / T` samples (rounded),
so the windows tile the clip; at T = 1 the single window is the whole waveform, exactly the
CVPR 2021 input. Per-segment features let fusion, attention and the ICLR 2025 temporal
attacks work frame by frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_length(num_samples: int, steps: int) -> int:
    """Samples in each of `steps` windows over a waveform of `num_samples` samples."""
    if steps < 1:
        raise ValueError(f"the number of segments must be at least 1, got {steps}")
    return max(1, round(num_samples / steps))


def window_starts(num_samples: int, steps: int) -> list[int]:
    """First sample of each window, centred on the frame times `(t + 0.5) L / T` (may be < 0 or
    reach past the end, where the window is padded with silence)."""
    length = window_length(num_samples, steps)
    return [round((t + 0.5) * num_samples / steps - length / 2) for t in range(steps)]


def segment_waveform(waveform: torch.Tensor, steps: int) -> torch.Tensor:
    """Waveform `(B, L)` in [-1, 1] -> windows `(B, T, W)`, W = `window_length(L, T)`, the window
    of segment t centred on frame t's time; T = 1 returns the waveform itself as `(B, 1, L)`."""
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be (B, L), got shape {tuple(waveform.shape)}")
    total = waveform.shape[1]
    length = window_length(total, steps)
    starts = window_starts(total, steps)
    before, after = max(0, -min(starts)), max(0, max(starts) + length - total)
    padded = F.pad(waveform, (before, after)) if before or after else waveform
    return torch.stack([padded[:, s + before : s + before + length] for s in starts], dim=1)
