"""Targeted map attack: move the localization map into a chosen region (a silent object's box,
or any rectangle), keeping the class unless told otherwise.

Gain per clip: the share of the map's mass inside the region, averaged over frames, minus the
class penalty. Success, per frame: the map's peak lies inside the region
(`avdemo.measures.localization.map_attack_success`).
"""

from __future__ import annotations

import torch

from ..models import AVOutput
from .map_attack import MapAttack, region_mask
from .registry import register_attack


@register_attack
class MapTarget(MapAttack):
    name = "map-target"
    rank = 70
    uses = (*MapAttack.uses, "target_region")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.settings.target_region is None:
            raise ValueError("map-target needs a target region: the box the map should move into, "
                             "(x0, y0, x1, y1) in fractions of the frame")

    def map_objective(self, maps: torch.Tensor, output: AVOutput, labels: torch.Tensor) -> torch.Tensor:
        mask = region_mask(self.settings.target_region, maps.shape[1], maps.shape[2], maps.shape[3], maps.device)
        share = (maps * mask).flatten(2).sum(-1) / maps.flatten(2).sum(-1).clamp_min(1e-6)
        return share.mean(1) - self.class_penalty(output, labels)

