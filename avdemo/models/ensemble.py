"""Several networks attacked as one: the ensemble surrogate of transfer attacks (Dong et al.,
2018; ICLR 2025 §6.3). Its output keeps every member's `AVOutput`, so an attack averages its
objective over the members (the loss, not the logits, is averaged), and its logits are the
members' mean for what the trace and a verdict read."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .networks import AVOutput


@dataclass
class EnsembleOutput:
    """The members' outputs; `logits` `(B, K)` their mean."""

    members: list[AVOutput]

    @property
    def logits(self) -> torch.Tensor:
        return torch.stack([member.logits for member in self.members]).mean(dim=0)


class Ensemble(nn.Module):
    """Networks of one class list taking the same inputs: waveform `(B, L)` in [-1, 1], frames
    `(B, T, 3, H, W)` in [0, 1] -> `EnsembleOutput`."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if len(models) < 2:
            raise ValueError(f"an ensemble needs at least 2 models, got {len(models)}")
        self.members = nn.ModuleList(models)

    def forward(self, waveform: torch.Tensor, frames: torch.Tensor) -> EnsembleOutput:
        return EnsembleOutput([member(waveform, frames) for member in self.members])
