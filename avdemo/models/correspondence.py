"""Cell-level audio-visual correspondence: where in the frame the sound comes from.

The audio feature of a segment and every cell of that segment's visual feature map are
projected into one embedding space; their cosine similarity over the cells is the
localization map. It is trained without boxes by the multiple-instance contrastive objective
of EZ-VSL (Mo & Morgado, ECCV 2022) and SLAVC (NeurIPS 2022): a clip's audio must match the
best cell of its own frame better than the best cell of any other clip's frame (InfoNCE over
the batch). Boxes are never used: they exist only to score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CellCorrespondence(nn.Module):
    """Linear projections of the audio feature and of each visual cell (a 1x1 convolution)
    into a `dim`-sized space, L2-normalised, so that their dot product is a cosine in [-1, 1]."""

    def __init__(self, audio_dim: int, visual_dim: int, dim: int = 128, temperature: float = 0.07):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.audio_projection = nn.Linear(audio_dim, dim)
        self.cell_projection = nn.Conv2d(visual_dim, dim, kernel_size=1)
        self.temperature = temperature

    def forward(self, audio: torch.Tensor, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio `(B, T, Da)`, maps `(B, T, Dv, h, w)` -> unit audio embeddings `(B, T, E)` and
        unit cell embeddings `(B, T, E, h, w)`."""
        audio_embedding = F.normalize(self.audio_projection(audio), dim=-1)
        cells = self.cell_projection(maps.flatten(0, 1))
        cell_embedding = F.normalize(cells, dim=1).unflatten(0, maps.shape[:2])
        return audio_embedding, cell_embedding


def cell_similarity(audio_embedding: torch.Tensor, cell_embedding: torch.Tensor) -> torch.Tensor:
    """Cosine of each segment's audio with each cell of its own frame: `(B, T, E)` and
    `(B, T, E, h, w)` -> `(B, T, h, w)` in [-1, 1]."""
    return torch.einsum("bte,btehw->bthw", audio_embedding, cell_embedding)


def contrastive_localization_loss(audio_embedding: torch.Tensor, cell_embedding: torch.Tensor,
                                  labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """The multiple-instance InfoNCE of EZ-VSL, per clip `(B,)` (>= 0).

    For clip i and every clip j, the score s_ij is the best cell of j's frame for i's audio,
    averaged over segments; the loss is the cross-entropy of picking j = i among the clips, in
    both directions (audio -> frames and frame -> audios). Other clips of the same class are
    left out of the negatives: their objects may sound like i's and should not be pushed away.
    audio `(B, T, E)` and cells `(B, T, E, h, w)` unit-norm; labels `(B,)`.
    """
    batch = audio_embedding.shape[0]
    pairwise = torch.einsum("ite,jtehw->ijthw", audio_embedding, cell_embedding)  # (B, B, T, h, w)
    scores = pairwise.flatten(3).amax(dim=3).mean(dim=2) / temperature  # (B, B)
    same_class = labels[:, None] == labels[None, :]
    own = torch.eye(batch, dtype=torch.bool, device=scores.device)
    scores = scores.masked_fill(same_class & ~own, float("-inf"))
    target = torch.arange(batch, device=scores.device)
    audio_to_frames = F.cross_entropy(scores, target, reduction="none")
    frame_to_audios = F.cross_entropy(scores.t(), target, reduction="none")
    return (audio_to_frames + frame_to_audios) / 2
