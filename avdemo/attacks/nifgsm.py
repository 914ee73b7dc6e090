"""NI-FGSM (Lin et al., ICLR 2020): MI-FGSM whose gradient is taken at a Nesterov look-ahead
point, x_nes = x_t + alpha * mu * g_t, which anticipates the momentum's next move and makes
adversarial examples transfer better to other models.

As in the paper's Algorithm 1, the look-ahead point is not projected onto the eps-ball; it
is only clamped to the valid input range so that the model sees a real waveform and image.
"""

from __future__ import annotations

import torch

from .base import VALID_RANGE
from .mim import MIM
from .registry import register_attack


@register_attack
class NIFGSM(MIM):
    name = "nifgsm"
    aliases = ("ni-fgsm",)
    rank = 50

    def gradients(self, point: dict[str, torch.Tensor], labels: torch.Tensor):
        ahead = dict(point)
        for modality, momentum in self.momentum.items():
            step = self.step_size[modality].to(momentum.device, momentum.dtype)
            ahead[modality] = torch.clamp(point[modality] + step * self.settings.decay * momentum, *VALID_RANGE[modality])
        return super().gradients(ahead, labels)
