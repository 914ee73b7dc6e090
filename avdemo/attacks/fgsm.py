"""FGSM (Goodfellow et al., 2015): one step of size eps along the gradient's sign."""

from __future__ import annotations

from torch import nn

from .base import Attack, Budget, ExtraLoss
from .registry import register_attack


@register_attack
class FGSM(Attack):
    name = "fgsm"

    def __init__(
        self,
        model: nn.Module,
        *,
        eps_audio: Budget = 0.0,
        eps_visual: Budget = 0.0,
        targeted: bool = False,
        extra_loss: ExtraLoss | None = None,
    ):
        super().__init__(
            model,
            eps_audio=eps_audio,
            eps_visual=eps_visual,
            step_audio=eps_audio,
            step_visual=eps_visual,
            steps=1,
            targeted=targeted,
            extra_loss=extra_loss,
        )
