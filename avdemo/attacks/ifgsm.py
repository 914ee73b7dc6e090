"""I-FGSM / BIM (Kurakin et al., 2017): FGSM repeated with a small step, projected after each
step onto the eps-ball around the clean input and onto the valid range."""

from __future__ import annotations

from torch import nn

from .base import Attack, Budget, ExtraLoss
from .registry import register_attack


@register_attack
class IFGSM(Attack):
    name = "ifgsm"

    def __init__(
        self,
        model: nn.Module,
        *,
        eps_audio: Budget = 0.0,
        eps_visual: Budget = 0.0,
        step_audio: Budget | None = None,
        step_visual: Budget | None = None,
        steps: int = 10,
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
            targeted=targeted,
            extra_loss=extra_loss,
        )
