"""Untargeted map attack: push the localization map off what it points at on the clean input,
keeping the class: "the model is right but the map lies".

The attack does not need ground truth: it moves the map's mass away from where the clean map
had it (gain per clip: minus the overlap of the map with the clean map, each normalised to sum
to one per frame, averaged over frames, minus the class penalty). Where the clip has ground
truth, success per frame is the peak outside the sounding object's box with the class kept.
"""

from __future__ import annotations

import torch

from ..models import AVOutput
from .map_attack import MapAttack
from .registry import register_attack


@register_attack
class MapAway(MapAttack):
    name = "map-away"
    rank = 71

    def map_objective(self, maps: torch.Tensor, output: AVOutput, labels: torch.Tensor) -> torch.Tensor:
        share = maps.flatten(2) / maps.flatten(2).sum(-1, keepdim=True).clamp_min(1e-6)
        clean = self.clean_maps.flatten(2)
        clean = clean / clean.sum(-1, keepdim=True).clamp_min(1e-6)
        overlap = (share * clean).sum(-1) * clean.shape[-1]  # 1 for a uniform map
        return -overlap.mean(1) - self.class_penalty(output, labels)
