"""MIM / MI-FGSM (Dong et al., 2018): I-FGSM whose step follows the sign of an accumulated
momentum of per-sample L1-normalised gradients, g <- mu * g + grad / mean|grad|.

Unlike the paper's reference code, which projects around the *current* adversarial input
(letting audio drift to 1.25 eps), every step here is projected around the clean input.
"""

from __future__ import annotations

import torch

from .ifgsm import IFGSM
from .registry import register_attack


@register_attack
class MIM(IFGSM):
    name = "mim"
    aliases = ("mi-fgsm", "mifgsm")
    rank = 40
    uses = (*IFGSM.uses, "decay")

    def reset(self) -> None:
        self.momentum: dict[str, torch.Tensor] = {}

    def keep(self, standing: torch.Tensor) -> None:
        self.momentum = {modality: momentum[standing] for modality, momentum in self.momentum.items()}

    def direction(self, modality: str, grad: torch.Tensor) -> torch.Tensor:
        per_sample_l1 = grad.abs().flatten(1).mean(dim=1).clamp_min(1e-12)
        normalised = grad / per_sample_l1.view(-1, *([1] * (grad.dim() - 1)))
        previous = self.momentum.get(modality)
        self.momentum[modality] = normalised if previous is None else self.settings.decay * previous + normalised
        return self.momentum[modality].sign()
