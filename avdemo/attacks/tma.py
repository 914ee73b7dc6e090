"""TMA, the temporal and modality-based attack (ICLR 2025, Eq. 4): MI-FGSM on cross-entropy minus
lambda_temporal x L_TIA minus lambda_misalign x L_MMA, summed over transformed copies."""

from __future__ import annotations

from .mim import MIM
from .registry import register_attack
from .temporal_modality import TRANSFORM_SETTINGS, TemporalModalityAttack


@register_attack
class TMA(TemporalModalityAttack):
    name = "tma"
    rank = 62
    uses = (*MIM.uses, *TRANSFORM_SETTINGS, "lambda_temporal", "lambda_misalign")
    temporal = True
    misalign = True
    transformed = True
