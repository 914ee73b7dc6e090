"""I-FGSM / BIM (Kurakin et al., 2017): FGSM repeated with a small step, projected after each
step onto the eps-ball around the clean input and onto the valid range."""

from __future__ import annotations

from torch import nn

from .base import Attack, ExtraLoss, budget_tensor
from .registry import register_attack
from .settings import AttackSettings


@register_attack
class IFGSM(Attack):
    """`steps` steps of size `step_*` (default eps / 8, the paper's choice)."""

    name = "ifgsm"
    aliases = ("i-fgsm", "bim")
    rank = 20
    uses = (*Attack.uses, "steps", "step_audio", "step_visual")

    def __init__(self, model: nn.Module, settings: AttackSettings | None = None, extra_loss: ExtraLoss | None = None):
        super().__init__(model, settings, extra_loss)
        self.steps = int(self.settings.steps)
        given = {"audio": self.settings.step_audio, "visual": self.settings.step_visual}
        self.step_size = {
            modality: self.eps[modality] / 8 if step is None else budget_tensor(step, modality, f"step_{modality}")
            for modality, step in given.items()
        }
