"""The cell-level correspondence's contrastive term: one value per clip, lower when each
clip's audio matches a cell of its own frame, and same-class clips are never negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avdemo.models.correspondence import contrastive_localization_loss, mosaic, mosaic_localization_loss


def _unit(*shape: int, generator: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=generator), dim=2)


def test_contrastive_term_has_one_nonnegative_value_per_clip():
    generator = torch.Generator().manual_seed(0)
    audio, cells = _unit(6, 2, 8, generator=generator), _unit(6, 2, 8, generator=generator).unflatten(2, (8, 1, 1))
    cells = cells.expand(-1, -1, -1, 3, 3).clone()
    loss = contrastive_localization_loss(audio, cells, torch.arange(6), temperature=0.1)
    assert loss.shape == (6,) and (loss >= 0).all()


def test_contrastive_term_is_lower_when_each_audio_matches_a_cell_of_its_own_frame():
    generator = torch.Generator().manual_seed(1)
    batch = 8
    audio = _unit(batch, 1, 16, generator=generator)
    cells = _unit(batch, 1, 16, generator=generator)[..., None, None].expand(-1, -1, -1, 3, 3).clone()
    matched = cells.clone()
    matched[:, :, :, 1, 2] = audio  # one cell of each frame is the clip's own sound
    labels = torch.arange(batch)
    aligned = contrastive_localization_loss(audio, matched, labels, 0.1).mean()
    shuffled = contrastive_localization_loss(audio, matched[torch.roll(labels, 1)], labels, 0.1).mean()
    unrelated = contrastive_localization_loss(audio, cells, labels, 0.1).mean()
    assert aligned < unrelated < shuffled or aligned < shuffled
    assert aligned < 0.1 * shuffled


def test_same_class_clips_are_not_negatives():
    generator = torch.Generator().manual_seed(2)
    audio = _unit(4, 1, 8, generator=generator)
    cells = _unit(4, 1, 8, generator=generator)[..., None, None].clone()
    cells[1] = audio[0][..., None, None]  # clip 1 shows clip 0's sound better than clip 0 does
    distinct = contrastive_localization_loss(audio, cells, torch.tensor([0, 1, 2, 3]), 0.1)
    same = contrastive_localization_loss(audio, cells, torch.tensor([0, 0, 2, 3]), 0.1)
    assert same[0] < distinct[0]


def test_mosaic_tiles_four_frames_of_different_classes_into_one_picture():
    frames = torch.rand(9, 3, 64, 64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 3])
    pictures, members = mosaic(frames, labels, torch.Generator().manual_seed(0))
    assert pictures.shape == (2, 3, 64, 64) and members.shape == (2, 4)
    assert len(set(members.flatten().tolist())) == 8  # no clip twice
    assert len(set(labels[members[0]].tolist())) == 4  # the first picture has four classes
    # the top-right tile of the first picture is its second member, downscaled
    tile = F.interpolate(frames[members[0, 1]][None], size=(32, 32), mode="bilinear", antialias=True, align_corners=False)[0]
    assert torch.allclose(pictures[0, :, :32, 32:], tile.clamp(0, 1), atol=1e-6)


def test_mosaic_term_is_lowest_when_each_audio_matches_its_own_tile():
    generator = torch.Generator().manual_seed(3)
    audio = _unit(4, 1, 16, generator=generator)[:, 0]  # (B, E)
    members, labels = torch.arange(4)[None], torch.arange(4)
    cells = F.normalize(torch.randn(1, 16, 4, 4, generator=generator), dim=1)
    matched = cells.clone()
    for tile, (row, col) in enumerate(((0, 0), (0, 2), (2, 0), (2, 2))):
        matched[0, :, row, col] = audio[tile]  # one cell of each tile carries its clip's sound
    crossed = matched.flip(3)  # each clip's cell now sits in its neighbour's tile
    right = mosaic_localization_loss(audio, matched, members, labels, 0.1)
    wrong = mosaic_localization_loss(audio, crossed, members, labels, 0.1)
    assert right.shape == (4,) and (right >= 0).all()
    assert right.mean() < 0.2 * wrong.mean()
