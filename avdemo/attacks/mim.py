"""MIM (Dong et al., 2018): I-FGSM whose step follows the sign of an accumulated momentum of
per-sample L1-normalised gradients, g <- mu * g + grad / mean|grad|.

Unlike the paper's reference code, which projects around the *current* adversarial input
(letting audio drift to 1.25 eps), every step here is projected around the clean input.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Attack, Budget, ExtraLoss
from .registry import register_attack


@register_attack
class MIM(Attack):
    name = "mim"

    def __init__(
        self,
        model: nn.Module,
        *,
        eps_audio: Budget = 0.0,
        eps_visual: Budget = 0.0,
        step_audio: Budget | None = None,
        step_visual: Budget | None = None,
        steps: int = 10,
        decay: float = 1.0,
        targeted: bool = False,
        extra_loss: ExtraLoss | None = None,
    ):
        if decay < 0:
            raise ValueError(f"momentum decay must be non-negative, got {decay}")
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
        self.decay = decay
        self.momentum: dict[str, torch.Tensor] = {}

    def reset(self) -> None:
        self.momentum = {}

    def direction(self, modality: str, grad: torch.Tensor) -> torch.Tensor:
        per_sample_l1 = grad.abs().flatten(1).mean(dim=1).clamp_min(1e-12)
        normalised = grad / per_sample_l1.view(-1, *([1] * (grad.dim() - 1)))
        previous = self.momentum.get(modality)
        self.momentum[modality] = normalised if previous is None else self.decay * previous + normalised
        return self.momentum[modality].sign()
