"""PGD (Madry et al., 2018): I-FGSM with an optional uniform random start inside the ball.

The paper's reference code runs it without a random start, which makes it I-FGSM; the
random start is reproducible when `seed` is given.
"""

from __future__ import annotations

import torch

from .ifgsm import IFGSM
from .registry import register_attack


@register_attack
class PGD(IFGSM):
    name = "pgd"
    rank = 30
    uses = (*IFGSM.uses, "random_start", "seed")

    def reset(self) -> None:
        self.generator: torch.Generator | None = None

    def start(self, clean: torch.Tensor, modality: str) -> torch.Tensor:
        if not self.settings.random_start:
            return clean
        if self.settings.seed is not None and self.generator is None:
            self.generator = torch.Generator(device=clean.device).manual_seed(self.settings.seed)
        eps = self.eps[modality].to(clean.device, clean.dtype)
        noise = torch.rand(clean.shape, generator=self.generator, device=clean.device, dtype=clean.dtype)
        return self.project(clean + (2 * noise - 1) * eps, clean, modality)
