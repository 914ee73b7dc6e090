"""A tiny audio-visual task learnable in seconds on a CPU, for tests that need a trained model.

Class k sounds as a sine at its own frequency and shows a square of its own colour at a
random place on a noisy background.
"""

from __future__ import annotations

import torch

from avdemo.models import ModelConfig, build_model

NUM_CLASSES = 4
NUM_SAMPLES = 4096
SAMPLE_RATE = 11025
SIZE = 32
COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9], [0.9, 0.9, 0.1]])
FREQUENCIES = torch.tensor([300.0, 700.0, 1500.0, 3000.0])


def toy_batch(count: int, seed: int, frames_per_clip: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """waveform `(count, 4096 T)` in [-1, 1] (one 4096-sample window per frame, the audio net's
    minimum), frames `(count, T, 3, 32, 32)` in [0, 1], labels `(count,)`."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % NUM_CLASSES
    samples = NUM_SAMPLES * frames_per_clip
    t = torch.arange(samples) / SAMPLE_RATE
    phase = torch.rand(count, 1, generator=generator) * 6.28
    amplitude = 0.3 + 0.3 * torch.rand(count, 1, generator=generator)
    waveform = amplitude * torch.sin(2 * torch.pi * FREQUENCIES[labels, None] * t + phase)
    waveform = (waveform + 0.05 * torch.randn(count, samples, generator=generator)).clamp(-1, 1)
    frames = 0.4 + 0.1 * torch.randn(count, frames_per_clip, 3, SIZE, SIZE, generator=generator)
    for index in range(count):
        top, left = torch.randint(0, SIZE - 10, (2,), generator=generator).tolist()
        frames[index, :, :, top : top + 10, left : left + 10] = COLOURS[labels[index]].view(1, 3, 1, 1)
    return waveform, frames.clamp(0, 1), labels


def train_toy_model(kind: str = "av", fusion: str = "concat", steps: int = 150, seed: int = 0) -> torch.nn.Module:
    """A width-1/16 network trained on the toy task (about 100 % clean accuracy)."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(num_classes=NUM_CLASSES, kind=kind, fusion=fusion, width=1 / 16))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    waveform, frames, labels = toy_batch(256, seed=seed + 1)
    model.train()
    for step in range(steps):
        index = torch.randint(0, len(labels), (32,))
        loss = torch.nn.functional.cross_entropy(model(waveform[index], frames[index]).logits, labels[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def accuracy(model: torch.nn.Module, waveform: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(waveform, frames).logits.argmax(-1) == labels).float().mean().item()


def tone(labels: torch.Tensor, generator: torch.Generator, samples: int = NUM_SAMPLES) -> torch.Tensor:
    """The sine of each label's frequency with random phase and gain, plus faint noise: `(N, samples)` in [-1, 1]."""
    t = torch.arange(samples) / SAMPLE_RATE
    phase = torch.rand(len(labels), 1, generator=generator) * 6.28
    amplitude = 0.3 + 0.3 * torch.rand(len(labels), 1, generator=generator)
    waveform = amplitude * torch.sin(2 * torch.pi * FREQUENCIES[labels, None] * t + phase)
    return (waveform + 0.05 * torch.randn(len(labels), samples, generator=generator)).clamp(-1, 1)


SCENE_SIZE = 128
SQUARE = 48  # 37 % of the side, as AV-Synth objects (35-55 %)


def toy_scene_batch(count: int, seed: int) -> dict[str, torch.Tensor]:
    """Scenes for localization: the sounding class's square and a silent square of another class,
    apart, on a noisy background; the audio is the sounding class's tone. Returns waveform
    `(count, 4096)`, frames `(count, 1, 3, 128, 128)` in [0, 1], labels and distractor_labels
    `(count,)`, and boxes and distractor_boxes `(count, 4)` (x0, y0, x1, y1 pixels)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % NUM_CLASSES
    distractor_labels = (labels + torch.randint(1, NUM_CLASSES, (count,), generator=generator)) % NUM_CLASSES
    frames = 0.4 + 0.1 * torch.randn(count, 1, 3, SCENE_SIZE, SCENE_SIZE, generator=generator)
    boxes, distractor_boxes = torch.zeros(count, 4), torch.zeros(count, 4)
    span = SCENE_SIZE - SQUARE
    for index in range(count):
        while True:
            corners = torch.randint(0, span, (2, 2), generator=generator)
            if (corners[0] - corners[1]).abs().max() >= SQUARE:  # the squares do not overlap
                break
        for (left, top), label, box in ((corners[0], labels[index], boxes), (corners[1], distractor_labels[index], distractor_boxes)):
            frames[index, :, :, top : top + SQUARE, left : left + SQUARE] = COLOURS[label].view(1, 3, 1, 1)
            box[index] = torch.tensor([left, top, left + SQUARE, top + SQUARE])
    return {"waveform": tone(labels, generator), "frames": frames.clamp(0, 1), "labels": labels,
            "boxes": boxes, "distractor_labels": distractor_labels, "distractor_boxes": distractor_boxes}


def train_toy_localizer(steps: int = 400, seed: int = 0) -> torch.nn.Module:
    """A width-1/16 av-attention network with the cell-level correspondence, trained on toy
    scenes with classification + the contrastive and mosaic localization terms (no boxes)."""
    from avdemo.models import architecture_config
    from avdemo.training.train import TrainingObjective

    torch.manual_seed(seed)
    model = build_model(architecture_config("av-attention", NUM_CLASSES, 1 / 16, correspondence=True, temperature=0.07))
    objective = TrainingObjective(model, None, correspondence_weight=1.0, mosaic_weight=1.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    scenes = toy_scene_batch(512, seed=seed + 1)
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(scenes["labels"]), (32,))
        loss, _ = objective(scenes["waveform"][index], scenes["frames"][index], scenes["labels"][index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()
