"""Random noise, the control: a random sign in every input value at the full budget (a corner of
the L-inf ball), with no gradient at all. What an attack does beyond this, at the same budget, is
what its gradients bought; transfer rates are read against it."""

from __future__ import annotations

import torch

from .base import Attack
from .registry import register_attack


@register_attack
class RandomNoise(Attack):
    name = "noise"
    rank = 90  # after every attack in the menus: a control, not an attack
    uses = ("eps_audio", "eps_visual", "seed")

    def reset(self) -> None:
        seed = self.settings.seed
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def gradients(self, point, labels):
        """No gradient: the objective and output at the point, and uniform noise as the 'gradient'
        whose sign the step takes."""
        with torch.no_grad():
            output = self.model(point["audio"], point["visual"])
            loss = self.judged(output, labels)
        return loss, output, {m: (2 * torch.rand(point[m].shape, generator=self.generator) - 1).to(point[m])
                              for m in self.attacked}
