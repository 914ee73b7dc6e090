"""MMA, the modality misalignment-based attack (ICLR 2025, Eq. 2): MI-FGSM on cross-entropy minus
lambda_misalign x the cosine of the pooled audio and visual features, pulling the two modalities'
meanings apart. It needs a model with both modalities (features of one size)."""

from __future__ import annotations

from .mim import MIM
from .registry import register_attack
from .temporal_modality import TemporalModalityAttack


@register_attack
class MMA(TemporalModalityAttack):
    name = "mma"
    rank = 61
    uses = (*MIM.uses, "lambda_misalign")
    misalign = True
