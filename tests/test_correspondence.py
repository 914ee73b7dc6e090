"""The cell-level correspondence's contrastive term: one value per clip, lower when each
clip's audio matches a cell of its own frame, and same-class clips are never negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avdemo.models.correspondence import contrastive_localization_loss


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
