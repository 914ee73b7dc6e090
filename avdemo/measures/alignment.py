"""How consistent a model's features are over time and across modalities (ICLR 2025, §4).

Both are read off an `AVOutput` and are differentiable, so the TIA / MMA / TMA attacks minimise
them, and the attack trace and the transfer evaluation report them for every attack:

- `temporal_variance` (Eq. 1, L_TIA): the variance over segments of each segment's mean audio
  feature, plus the same for the visual features. Low means the features barely change over time.
- `modality_cosine` (Eq. 2, L_MMA): the cosine similarity of the pooled audio and visual
  features. The paper reports that adversarial examples with a lower cosine transfer better.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import AVOutput


def temporal_variance(output: AVOutput) -> torch.Tensor:
    """Var_t[mean_d f_a(t)] + Var_t[mean_d f_v(t)] `(B,)` >= 0, over the T segments (population
    variance, so T = 1 gives 0), from `audio_segments` `(B, T, Da)` and `visual_frames`
    `(B, T, Dv)`; a modality the model lacks contributes nothing."""
    parts = [features.mean(dim=-1).var(dim=1, unbiased=False)
             for features in (output.audio_segments, output.visual_frames) if features is not None]
    if not parts:
        raise ValueError("the temporal variance needs per-segment audio or visual features")
    return torch.stack(parts).sum(dim=0)


def has_both_features(output: AVOutput) -> bool:
    """Whether the model gives pooled audio and visual features of one size (their cosine exists)."""
    return (output.audio is not None and output.visual is not None
            and output.audio.shape[-1] == output.visual.shape[-1])


def modality_cosine(output: AVOutput) -> torch.Tensor:
    """cos(f_a, f_v) `(B,)` in [-1, 1] of the pooled audio `(B, D)` and visual `(B, D)` features
    (in [0, 1] for ReLU features)."""
    if not has_both_features(output):
        raise ValueError("the audio-visual cosine needs a model with audio and visual features of one size")
    return F.cosine_similarity(output.audio, output.visual, dim=-1)
