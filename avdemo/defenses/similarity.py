"""MinSim and MaxSim (Tian & Xu, CVPR 2021, §3.3.1): a cosine term between the audio and
visual features added to cross-entropy.

MinSim adds cos(f_a, f_v): minimising it pushes the modalities apart (multimodal dispersion)
while cross-entropy keeps each compact and discriminative, which the paper finds robust.
MaxSim adds 1 - cos(f_a, f_v), the intuitive alternative, which aligns them.

Each term is a module `(output, labels) -> (B,)`, so the same object serves as a training
loss term and as the attack's `extra_loss` (the attacker then maximises the defended
model's own training objective: an adaptive attack).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import AVOutput
from .registry import Defense, register_defense

TRAINING_TERM_OBJECTIVES = ("ce", "ce+term", "transfer:av-concat")


def audio_visual_cosine(output: AVOutput) -> torch.Tensor:
    """cos(f_a, f_v) per sample `(B,)`, with the paper's eta = 1e-8 guard."""
    if output.audio is None or output.visual is None:
        raise ValueError("a similarity term needs a model with both audio and visual features")
    return torch.cosine_similarity(output.audio, output.visual, dim=-1, eps=1e-8)


class MinSim(nn.Module):
    """weight * cos(f_a, f_v): the paper's dissimilarity constraint."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, output: AVOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.weight * audio_visual_cosine(output)


class MaxSim(nn.Module):
    """weight * (1 - cos(f_a, f_v)): the similarity constraint the paper compares against."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, output: AVOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.weight * (1 - audio_visual_cosine(output))


register_defense(Defense(
    key="minsim", name="MinSim", kind="training term", entry="av-minsim", objectives=TRAINING_TERM_OBJECTIVES,
    description="concat model trained with CE + cos(f_a, f_v): the modalities pushed apart (the paper's defense)",
    make_term=lambda weight, num_classes, dim: MinSim(weight)))
register_defense(Defense(
    key="maxsim", name="MaxSim", kind="training term", entry="av-maxsim", objectives=TRAINING_TERM_OBJECTIVES,
    description="concat model trained with CE + 1 - cos(f_a, f_v): the modalities aligned",
    make_term=lambda weight, num_classes, dim: MaxSim(weight)))
