"""PCL, the prototype conformity loss (Mustafa et al., ICCV 2019), as the CVPR 2021 paper's
baseline defense: each class has its own learnable centre; a feature is pulled to its
class's centre and pushed from the others', and the centres are pushed apart:

    L_PC = ||f - c_y||^2 - 1/(k-1) sum_{j != y} (||f - c_j||^2 + ||c_y - c_j||^2)

It acts on the fused feature. Features and centres are unit-normalised here so that the
push terms stay bounded (the original bounds them with a low-dimensional projection
branch); the centres are parameters of this module and train with the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import AVOutput
from .registry import Defense, register_defense
from .similarity import TRAINING_TERM_OBJECTIVES


class PrototypeConformity(nn.Module):
    """`(output, labels) -> (B,)`: weight x L_PC on the unit-normalised fused feature."""

    def __init__(self, num_classes: int, dim: int, weight: float = 0.5):
        super().__init__()
        self.weight = weight
        self.centres = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, output: AVOutput, labels: torch.Tensor) -> torch.Tensor:
        features = F.normalize(output.fused, dim=-1)
        centres = F.normalize(self.centres, dim=-1)
        distances = torch.cdist(features, centres).pow(2)  # (B, K)
        separations = torch.cdist(centres, centres).pow(2)[labels]  # (B, K): ||c_y - c_j||^2
        own = distances.gather(1, labels[:, None]).squeeze(1)
        others = 1 - F.one_hot(labels, num_classes=centres.shape[0]).to(features.dtype)
        push = ((distances + separations) * others).sum(1) / others.sum(1)
        return self.weight * (own - push)


register_defense(Defense(
    key="pcl", name="PCL", kind="training term", entry="av-pcl", objectives=TRAINING_TERM_OBJECTIVES,
    description="concat model trained with the prototype conformity loss (the paper's baseline defense)",
    make_term=lambda weight, num_classes, dim: PrototypeConformity(num_classes, dim, weight)))
