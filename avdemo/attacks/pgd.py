"""PGD (Madry et al., 2018): I-FGSM with an optional uniform random start inside the ball.

The paper's reference code runs it without a random start, which makes it I-FGSM; the
random start is seeded per call when `seed` is given.
"""

from __future__ import annotations

from torch import nn

from .base import Attack, Budget, ExtraLoss
from .registry import register_attack


@register_attack
class PGD(Attack):
    name = "pgd"

    def __init__(
        self,
        model: nn.Module,
        *,
        eps_audio: Budget = 0.0,
        eps_visual: Budget = 0.0,
        step_audio: Budget | None = None,
        step_visual: Budget | None = None,
        steps: int = 10,
        random_start: bool = False,
        seed: int | None = None,
        targeted: bool = False,
        extra_loss: ExtraLoss | None = None,
    ):
        super().__init__(
            model,
            eps_audio=eps_audio,
            eps_visual=eps_visual,
            step_audio=step_audio,
            step_visual=step_visual,
            steps=steps,
            random_start=random_start,
            seed=seed,
            targeted=targeted,
            extra_loss=extra_loss,
        )
