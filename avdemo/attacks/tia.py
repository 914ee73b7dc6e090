"""TIA, the temporal invariance-based attack (ICLR 2025, Eq. 1): MI-FGSM on cross-entropy minus
lambda_temporal x the variance over segments of the mean audio and mean visual features, summed
over transformed copies, so the perturbation targets what stays the same over time."""

from __future__ import annotations

from .mim import MIM
from .registry import register_attack
from .temporal_modality import TRANSFORM_SETTINGS, TemporalModalityAttack


@register_attack
class TIA(TemporalModalityAttack):
    name = "tia"
    rank = 60
    uses = (*MIM.uses, *TRANSFORM_SETTINGS, "lambda_temporal")
    temporal = True
    transformed = True
