"""Class-only attack: change the class while keeping the localization map where it was, to
show that classification and localization can be attacked separately.

Gain per clip: the cross-entropy of the label (its negative in targeted mode, as every class
attack) minus `penalty_weight` x 10 x how far the map at the clean map's peak cell fell below the
map's maximum, averaged over frames (0 while the clean peak is still the peak; the 10 puts a lost
peak on the scale of the cross-entropy). Keeping the peak worked better than keeping the whole
map (mean squared move) on the toy localizer: the class changed in both, the peak stayed on the
source in 8 of 16 scenes against 0-3 of 16. Success per frame: the class changed and the peak
still on the sounding object.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import AVOutput
from .map_attack import MapAttack
from .registry import register_attack

MOVE_SCALE = 10.0


@register_attack
class ClassOnly(MapAttack):
    name = "class-only"
    rank = 72
    uses = ("targeted", *(field for field in MapAttack.uses if field != "keep_class"))

    def map_objective(self, maps: torch.Tensor, output: AVOutput, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(output.logits, labels, reduction="none")
        if self.targeted:
            loss = -loss
        flat = maps.flatten(2)
        peaks = self.clean_maps.flatten(2).argmax(-1, keepdim=True)
        drop = 1 - flat.gather(-1, peaks).squeeze(-1)  # 0 while the clean peak is still the peak
        return loss - self.settings.penalty_weight * MOVE_SCALE * drop.mean(1)
