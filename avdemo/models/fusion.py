"""The five audio-visual fusions of Tian & Xu (CVPR 2021), appendix A.4.

Each maps an audio feature f_a `(B, d)` and a visual feature f_v `(B, d)` to a fused
feature f_av `(B, out_dim)`. Sum, FiLM and the gated fusions mix the modalities element by
element, so both features must have the same size d.
"""

from __future__ import annotations

import torch
from torch import nn


class Fusion(nn.Module):
    """Base class: records the feature size and the fused size."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.dim = dim
        self.out_dim = out_dim

    def check(self, audio: torch.Tensor, visual: torch.Tensor) -> None:
        if audio.shape[-1] != self.dim or visual.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects features of size {self.dim}, "
                f"got audio {tuple(audio.shape)} and visual {tuple(visual.shape)}"
            )


class SumFusion(Fusion):
    """f_av = f_a + f_v."""

    def __init__(self, dim: int):
        super().__init__(dim, dim)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        self.check(audio, visual)
        return audio + visual


class ConcatFusion(Fusion):
    """f_av = [f_a; f_v] (the paper's base model)."""

    def __init__(self, dim: int):
        super().__init__(dim, 2 * dim)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        self.check(audio, visual)
        return torch.cat([audio, visual], dim=-1)


class FiLMFusion(Fusion):
    """f_av = alpha(f_a) * f_v + beta(f_a), alpha a linear layer and beta the identity."""

    def __init__(self, dim: int):
        super().__init__(dim, dim)
        self.alpha = nn.Linear(dim, dim)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        self.check(audio, visual)
        return self.alpha(audio) * visual + audio


def _gates(audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f_1 = sigmoid(f_a) * f_v and f_2 = sigmoid(f_v) * f_a (Kiela et al., 2018)."""
    return torch.sigmoid(audio) * visual, torch.sigmoid(visual) * audio


class GatedSumFusion(Fusion):
    """f_av = f_1 + f_2."""

    def __init__(self, dim: int):
        super().__init__(dim, dim)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        self.check(audio, visual)
        first, second = _gates(audio, visual)
        return first + second


class GatedConcatFusion(Fusion):
    """f_av = [f_1; f_2]."""

    def __init__(self, dim: int):
        super().__init__(dim, 2 * dim)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        self.check(audio, visual)
        return torch.cat(_gates(audio, visual), dim=-1)


FUSIONS: dict[str, type[Fusion]] = {
    "sum": SumFusion,
    "concat": ConcatFusion,
    "film": FiLMFusion,
    "gated-sum": GatedSumFusion,
    "gated-concat": GatedConcatFusion,
}


def create_fusion(name: str, dim: int) -> Fusion:
    """Build a fusion by its name (one of `FUSIONS`)."""
    try:
        return FUSIONS[name](dim)
    except KeyError:
        raise ValueError(f"unknown fusion {name!r}; choose one of {sorted(FUSIONS)}") from None
