"""I-FGSM / BIM (Kurakin et al., 2017): FGSM repeated with a small step, projected after each
step onto the eps-ball around the clean input and onto the valid range."""

from __future__ import annotations

from torch import nn

from .base import Attack, Budget, budget_tensor
from .registry import register_attack


@register_attack
class IFGSM(Attack):
    """`steps` steps of size `step_*` (default eps / 8, the paper's choice)."""

    name = "ifgsm"

    def __init__(
        self,
        model: nn.Module,
        *,
        step_audio: Budget | None = None,
        step_visual: Budget | None = None,
        steps: int = 10,
        **budgets,
    ):
        super().__init__(model, **budgets)
        if int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a whole number of at least 1, got {steps}")
        self.steps = int(steps)
        given = {"audio": step_audio, "visual": step_visual}
        self.step_size = {
            modality: self.eps[modality] / 8 if step is None else budget_tensor(step, modality, f"step_{modality}")
            for modality, step in given.items()
        }
