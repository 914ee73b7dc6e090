"""Attacks on where the model hears the sound: the localization map, not (only) the class.

A map attack is PGD (same budgets, steps, random start) whose objective is read off the model's
own localization map (`avdemo.measures.localization.localization_maps`: per frame, min-max
normalised to [0, 1], at the feature grid). Each subclass is one file and one objective:

- `map-target`: move the map into a chosen region (`target_region`), keeping the class;
- `map-away`: move the map off what it points at on the clean input, keeping the class;
- `class-only`: change the class, keeping the map where it was.

The clean map is read once per call, before the first step. Keeping the class (the labels given
to the attack) is a hinge on the logit margin, `penalty_weight` x max(0, 1 - (z_keep - max other
z)): zero while the class leads by at least 1, so the map term moves freely until the class is at
risk. (A cross-entropy penalty kept pushing the class's confidence up and held the map back: on 6
test clips of av-attention at the visible budget, 3 of 6 maps moved onto the silent object
against 5 of 6 with the hinge, the class kept in all.) `keep_class=False` drops it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..measures.localization import localization_maps
from ..models import AVOutput
from .base import AttackResult
from .pgd import PGD
from .registry import ATTACKS, available_attacks

KEEP_MARGIN = 1.0  # logits: the lead the kept class must hold before the penalty acts


def region_mask(boxes: tuple[tuple[float, float, float, float], ...], frames: int, height: int, width: int,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """The share of each map cell a region covers: `(frames, height, width)` in [0, 1], from
    boxes (x0, y0, x1, y1) in fractions of the frame, one for all frames or one per frame."""
    if len(boxes) not in (1, frames):
        raise ValueError(f"give one target box for every frame or one per frame ({frames}), got {len(boxes)}")
    box = torch.tensor(boxes, dtype=torch.float32, device=device).expand(frames, 4)
    xs = torch.arange(width + 1, device=device, dtype=torch.float32) / width  # cell edges
    ys = torch.arange(height + 1, device=device, dtype=torch.float32) / height
    cover_x = (torch.minimum(xs[1:], box[:, 2:3]) - torch.maximum(xs[:-1], box[:, 0:1])).clamp_min(0) * width
    cover_y = (torch.minimum(ys[1:], box[:, 3:4]) - torch.maximum(ys[:-1], box[:, 1:2])).clamp_min(0) * height
    return cover_y[:, :, None] * cover_x[:, None, :]


def map_attack_names() -> tuple[str, ...]:
    """The registered attacks on the map, by rank (each a `MapAttack`)."""
    return tuple(name for name in available_attacks() if issubclass(ATTACKS[name], MapAttack))


class MapAttack(PGD):
    """PGD on an objective of the localization map; subclasses define `map_objective`."""

    rank = 70
    uses = (*(field for field in PGD.uses if field != "targeted"), "keep_class", "penalty_weight")

    def __call__(self, waveform: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor, on_step=None) -> AttackResult:
        with torch.no_grad():
            clean = self.model(waveform, frames)
        if not isinstance(clean, AVOutput) or clean.audio is None or clean.visual_map is None:
            raise ValueError(f"{self.name} attacks the localization map: it needs a model with both modalities and a map")
        self.clean_maps = localization_maps(clean)
        return super().__call__(waveform, frames, labels, on_step=on_step)

    def map_objective(self, maps: torch.Tensor, output: AVOutput, labels: torch.Tensor) -> torch.Tensor:
        """The attacker's gain `(B,)` from the maps `(B, T, h, w)` in [0, 1]."""
        raise NotImplementedError

    def class_penalty(self, output: AVOutput, labels: torch.Tensor) -> torch.Tensor:
        """`penalty_weight` x the hinge on the kept class's logit margin `(B,)` (0 while it leads by
        `KEEP_MARGIN` or more), or 0 when the class may change."""
        if not self.settings.keep_class:
            return torch.zeros(len(labels), device=labels.device)
        logits = output.logits.float()
        kept = logits.gather(1, labels[:, None])[:, 0]
        rival = logits.scatter(1, labels[:, None], float("-inf")).max(1).values
        return self.settings.penalty_weight * F.relu(rival - kept + KEEP_MARGIN)

    def objective(self, output: AVOutput, labels: torch.Tensor) -> torch.Tensor:
        gain = self.map_objective(localization_maps(output), output, labels)
        if self.extra_loss is not None:
            gain = gain + self.extra_loss(output, labels)
        return gain
