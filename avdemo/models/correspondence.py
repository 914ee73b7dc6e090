"""Cell-level audio-visual correspondence: where in the frame the sound comes from.

The audio feature of a segment and every cell of that segment's visual feature map are
projected into one embedding space; their cosine similarity over the cells is the
localization map. It is trained without boxes by the multiple-instance contrastive objective
of EZ-VSL (Mo & Morgado, ECCV 2022) and SLAVC (NeurIPS 2022): a clip's audio must match the
best cell of its own frame better than the best cell of any other clip's frame (InfoNCE over
the batch). Boxes are never used: they exist only to score.

That objective alone has a degenerate solution when every cell sees the whole frame (all
cells alike, the map flat), which a network trained from a weak initialisation finds. The
mosaic term removes it: four frames of different clips are tiled 2 x 2 into one picture, and
each clip's audio must pick its own tile's best cell over the other tiles' best cells. Where
each clip sits comes from how the picture was made, not from any annotation.
"""

from __future__ import annotations

import math

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
        return audio_embedding, self.embed_cells(maps.flatten(0, 1)).unflatten(0, maps.shape[:2])

    def embed_cells(self, maps: torch.Tensor) -> torch.Tensor:
        """Visual maps `(N, Dv, h, w)` -> unit cell embeddings `(N, E, h, w)`."""
        return F.normalize(self.cell_projection(maps), dim=1)


def soft_max_pool(scores: torch.Tensor, dim: int) -> torch.Tensor:
    """A smooth maximum over cells: logsumexp - log(count), between the mean and the max.

    Multiple-instance learning with a hard max trains one cell per frame, whichever happened
    to score highest at the start; on a toy scene the map's peak then lands beside the object
    (pointing 0.32 against 0.52 with this pooling, 400 steps). Here every cell gets gradient in
    proportion to how well it already matches.
    """
    return torch.logsumexp(scores, dim=dim) - math.log(scores.shape[dim])


def cell_similarity(audio_embedding: torch.Tensor, cell_embedding: torch.Tensor) -> torch.Tensor:
    """Cosine of each segment's audio with each cell of its own frame: `(B, T, E)` and
    `(B, T, E, h, w)` -> `(B, T, h, w)` in [-1, 1]."""
    return torch.einsum("bte,btehw->bthw", audio_embedding, cell_embedding)


def _without_same_class(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Scores `(..., N, N)` of N audios against N frames (or tiles) with the pairs of two
    different clips of the same class (labels `(..., N)`) set to -inf: never negatives."""
    same_class = labels[..., :, None] == labels[..., None, :]
    own = torch.eye(labels.shape[-1], dtype=torch.bool, device=scores.device)
    return scores.masked_fill(same_class & ~own, float("-inf"))


def contrastive_localization_loss(audio_embedding: torch.Tensor, cell_embedding: torch.Tensor,
                                  labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """The multiple-instance InfoNCE of EZ-VSL, per clip `(B,)` (>= 0).

    For clip i and every clip j, the score s_ij is the best cell of j's frame for i's audio (a
    smooth maximum, `soft_max_pool`), averaged over segments; the loss is the cross-entropy of picking j = i among the clips, in
    both directions (audio -> frames and frame -> audios). Other clips of the same class are
    left out of the negatives: their objects may sound like i's and should not be pushed away.
    audio `(B, T, E)` and cells `(B, T, E, h, w)` unit-norm; labels `(B,)`.
    """
    batch = audio_embedding.shape[0]
    pairwise = torch.einsum("ite,jtehw->ijthw", audio_embedding, cell_embedding)  # (B, B, T, h, w)
    scores = _without_same_class(soft_max_pool(pairwise.flatten(3) / temperature, dim=3).mean(dim=2), labels)
    target = torch.arange(batch, device=scores.device)
    audio_to_frames = F.cross_entropy(scores, target, reduction="none")
    frame_to_audios = F.cross_entropy(scores.t(), target, reduction="none")
    return (audio_to_frames + frame_to_audios) / 2


MOSAIC_GRID = 2
FEATURE_STRIDE = 32  # of the visual net's last map: a tile of a multiple of it owns whole cells


def mosaic(frames: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile the frames of a batch 2 x 2 into pictures of four clips each.

    frames `(B, 3, H, W)` in [0, 1], labels `(B,)` -> (pictures `(M, 3, S, S)` in [0, 1] with
    M = B // 4 and S = 2 * tile, each tile a multiple of 32 pixels near H / 2; members `(M, 4)`,
    the batch index of the clip in each tile, row-major). Clips are shuffled, then greedily
    grouped so that a picture's four clips have different classes where the batch allows.
    """
    batch = frames.shape[0]
    tiles = MOSAIC_GRID * MOSAIC_GRID
    if batch < tiles:
        raise ValueError(f"a mosaic needs at least {tiles} clips, got {batch}")
    order = torch.randperm(batch, generator=generator).tolist()
    classes = labels.tolist()
    groups: list[list[int]] = []
    while len(order) >= tiles and len(groups) < batch // tiles:
        group = [order.pop(0)]
        for index in list(order):
            if len(group) == tiles:
                break
            if all(classes[index] != classes[member] for member in group):
                group.append(index)
                order.remove(index)
        while len(group) < tiles:  # too few classes left: accept a repeat (masked in the loss)
            group.append(order.pop(0))
        groups.append(group)
    members = torch.tensor(groups, device=frames.device)
    tile = FEATURE_STRIDE * max(1, round(frames.shape[-1] / MOSAIC_GRID / FEATURE_STRIDE))
    small = F.interpolate(frames[members.flatten()], size=(tile, tile), mode="bilinear", antialias=True,
                          align_corners=False).clamp(0, 1)
    pictures = small.unflatten(0, (len(groups), MOSAIC_GRID, MOSAIC_GRID))  # (M, gy, gx, 3, t, t)
    pictures = pictures.permute(0, 3, 1, 4, 2, 5).reshape(len(groups), 3, MOSAIC_GRID * tile, MOSAIC_GRID * tile)
    return pictures, members


def mosaic_localization_loss(audio_embedding: torch.Tensor, cell_embedding: torch.Tensor, members: torch.Tensor,
                             labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Each tiled clip's audio must match its own tile best, per tiled clip `(4M,)` (>= 0).

    audio `(B, E)` unit (one per clip of the batch); cells `(M, E, h, w)` unit, the mosaic
    pictures' cell embeddings (h, w divisible by 2); members `(M, 4)` from `mosaic`; labels `(B,)`.
    The score of a tile is its best cell (multiple instances, a smooth maximum); tiles of
    another clip of the same class are left out, as in `contrastive_localization_loss`.
    """
    pictures, dim, height, width = cell_embedding.shape
    grid = MOSAIC_GRID
    tiles = cell_embedding.reshape(pictures, dim, grid, height // grid, grid, width // grid)
    tiles = tiles.permute(0, 2, 4, 1, 3, 5).reshape(pictures, grid * grid, dim, -1)  # (M, 4, E, cells)
    audio = audio_embedding[members]  # (M, 4, E): the audio of the clip in tile q
    scores = soft_max_pool(torch.einsum("mqe,mpec->mqpc", audio, tiles) / temperature, dim=3)  # (M, 4 audios, 4 tiles)
    scores = _without_same_class(scores, labels[members])
    target = torch.arange(grid * grid, device=scores.device).repeat(pictures)
    return F.cross_entropy(scores.flatten(0, 1), target, reduction="none")
