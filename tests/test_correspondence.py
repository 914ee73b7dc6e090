"""The cell-level correspondence: the contrastive term's shape and sign, and a tiny model that
learns from labels and the term alone (never a box) to point at the square whose tone plays,
and moves its peak when another square's tone is swapped in."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avdemo.measures.localization import localization_maps
from avdemo.models import ModelConfig, build_model
from avdemo.models.correspondence import contrastive_localization_loss
from avdemo.training.train import TrainingObjective
from toy_task import COLOURS, FREQUENCIES, NUM_CLASSES, NUM_SAMPLES, SAMPLE_RATE

GRID = 2  # 64 px frames give a 2 x 2 feature map: one square fills one quadrant
SIZE = 32 * GRID


STEPS = 150


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


def _scenes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames with a sounding square and a silent square of another class, each filling one
    cell; returns waveform `(N, 4096)`, frames `(N, 1, 3, 128, 128)`, labels, the sounding
    cell and the silent (distractor) cell and class."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % NUM_CLASSES
    others = (labels + torch.randint(1, NUM_CLASSES, (count,), generator=generator)) % NUM_CLASSES
    frames = 0.4 + 0.1 * torch.randn(count, 1, 3, SIZE, SIZE, generator=generator)
    cells = torch.stack([torch.randperm(GRID * GRID, generator=generator)[:2] for _ in range(count)])
    for index in range(count):
        for cell, label in zip(cells[index].tolist(), (labels[index], others[index])):
            row, column = divmod(cell, GRID)
            frames[index, 0, :, row * 32 + 4 : row * 32 + 28, column * 32 + 4 : column * 32 + 28] = COLOURS[label].view(3, 1, 1)
    return _tones(labels, generator), frames.clamp(0, 1), labels, cells, others


def _tones(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    t = torch.arange(NUM_SAMPLES) / SAMPLE_RATE
    phase = torch.rand(len(labels), 1, generator=generator) * 6.28
    waveform = 0.5 * torch.sin(2 * torch.pi * FREQUENCIES[labels, None] * t + phase)
    return (waveform + 0.05 * torch.randn(len(labels), NUM_SAMPLES, generator=generator)).clamp(-1, 1)


def _peak_cells(model: torch.nn.Module, waveform: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return localization_maps(model(waveform, frames))[:, 0].flatten(1).argmax(dim=1)


def test_tiny_model_learns_to_point_at_the_sounding_square_and_follows_a_swapped_sound():
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=NUM_CLASSES, width=1 / 16, attention=True, correspondence=True,
                                    correspondence_dim=16, temperature=0.1, audio_dropout=0.5))
    objective = TrainingObjective(model, None, correspondence_weight=1.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(STEPS):  # fresh scenes every step: nothing to memorise
        loss, _ = objective(*_scenes(32, seed=100 + step)[:3])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    waveform, frames, labels, cells, others = _scenes(64, seed=2)
    pointing = (_peak_cells(model, waveform, frames) == cells[:, 0]).float().mean().item()
    assert pointing >= 0.8, f"pointing game {pointing:.2f} on the toy task"
    swapped = _tones(others, torch.Generator().manual_seed(3))  # the silent square's sound, same frames
    follows = (_peak_cells(model, swapped, frames) == cells[:, 1]).float().mean().item()
    assert follows >= 0.7, f"the peak moved to the newly sounding square in {follows:.2f} of clips"
