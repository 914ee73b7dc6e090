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
