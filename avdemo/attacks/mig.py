"""MIG, momentum integrated gradients (Ma et al., ICCV 2023), a transfer baseline of the ICLR 2025
paper: MI-FGSM whose gradient is the integrated gradient of the true class's probability,

    IG(x) = (x - x0) * mean_k grad p_y(x0 + k/s (x - x0)),  k = 1..s  (s = `path_points`),

with the zero baseline x0 = 0 (black frames, silence), as in the public code
(Trustworthy-AI-Group/TransferAttack): the attack lowers p_y (raises the target's in targeted mode).
Only the attacked modalities travel along the path; the other stays as the victim gets it.
"""

from __future__ import annotations

import torch

from .base import logits_of
from .mim import MIM
from .registry import register_attack


@register_attack
class MIG(MIM):
    name = "mig"
    rank = 45
    uses = (*MIM.uses, "path_points")

    def inputs_at(self, point):
        points, attacked = self.settings.path_points, self.attacked
        for k in range(points, 0, -1):  # the point itself first (k = s), for the trace
            yield tuple(point[m] * (k / points) if m in attacked else point[m] for m in ("audio", "visual"))

    def objective(self, output, labels):
        probability = torch.softmax(logits_of(output).float(), dim=-1).gather(1, labels[:, None])[:, 0]
        gain = probability if self.targeted else -probability
        if self.extra_loss is not None:
            gain = gain + self.extra_loss(output, labels)
        return gain

    def gradients(self, point, labels):
        loss, output, summed = super().gradients(point, labels)
        points = self.settings.path_points
        return loss, output, {m: point[m] * grad / points for m, grad in summed.items()}
