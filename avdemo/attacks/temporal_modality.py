"""The shared machinery of the ICLR 2025 attacks TIA, MMA and TMA (one registered file each).

Each is MI-FGSM (same budgets, steps and momentum) on

    CE(F(x), y) - lambda_temporal L_TIA - lambda_misalign L_MMA,

summed over the current input and `copies` randomly transformed copies of it (Eq. 4), where
L_TIA is the temporal variance of the segment features (Eq. 1) and L_MMA the cosine of the audio
and visual features (Eq. 2) (`avdemo.measures.alignment`). TIA keeps the first term and the
transformations, MMA the second without transformations, TMA both with them. Copy k uses
transformation `transforms[k mod len(transforms)]` with fresh random parameters
(`avdemo.attacks.transforms`), drawn from `seed` when one is given. Momentum, not plain I-FGSM,
because every transfer baseline the paper compares with (MI-FGSM, MIG, PAM) builds on it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..measures.alignment import modality_cosine, temporal_variance
from .base import ExtraLoss
from .mim import MIM
from .settings import AttackSettings
from .transforms import check_transforms, transform_copy

TRANSFORM_SETTINGS = ("copies", "transforms", "transform_modality", "synchronous", "seed")


class TemporalModalityAttack(MIM):
    """MI-FGSM on cross-entropy minus the chosen feature terms, over transformed copies."""

    temporal: ClassVar[bool] = False  # subtract lambda_temporal x L_TIA
    misalign: ClassVar[bool] = False  # subtract lambda_misalign x L_MMA
    transformed: ClassVar[bool] = False  # sum over transformed copies too

    def __init__(self, model: nn.Module, settings: AttackSettings | None = None, extra_loss: ExtraLoss | None = None):
        super().__init__(model, settings, extra_loss)
        if self.transformed:
            check_transforms(self.settings.transforms)

    def reset(self) -> None:
        super().reset()
        seed = self.settings.seed
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def inputs_at(self, point):
        yield point["audio"], point["visual"]
        if self.transformed:
            names = self.settings.transforms
            for copy in range(self.settings.copies):
                yield transform_copy(names[copy % len(names)], point["audio"], point["visual"],
                                     self.settings.transform_modality, self.settings.synchronous, self.generator)

    def objective(self, output, labels):
        loss = super().objective(output, labels)
        if self.temporal:
            loss = loss - self.settings.lambda_temporal * temporal_variance(output)
        if self.misalign:
            loss = loss - self.settings.lambda_misalign * modality_cosine(output)
        return loss
