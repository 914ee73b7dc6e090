"""Measuring models on batches of clips: clean and attacked accuracy, localization scores.

Loaders yield dicts as `avdemo.data.shards.to_sample` makes them, batched: `waveform`
`(B, L)`, `frames` `(B, T, 3, H, W)`, `label` `(B,)`, and for AV-Synth `box` `(B, T, 4)` and
`distractor_box` `(B, T, D, 4)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .attacks import Attack
from .localization import distractor_hits, localization_maps, pointing_game, upsample


def _to(batch: dict, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch["waveform"].to(device), batch["frames"].to(device), batch["label"].to(device)


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[dict], device="cpu") -> float:
    """Top-1 accuracy of `model` on clean clips."""
    model.eval()
    correct = total = 0
    for batch in batches:
        waveform, frames, labels = _to(batch, device)
        correct += (model(waveform, frames).logits.argmax(-1) == labels).sum().item()
        total += len(labels)
    return correct / max(total, 1)


def attacked_accuracy(model: nn.Module, batches: Iterable[dict], make_attack: Callable[[nn.Module], Attack],
                      device="cpu") -> float:
    """Top-1 accuracy on adversarial clips crafted against the true labels by `make_attack(model)`."""
    attack = make_attack(model)
    correct = total = 0
    for batch in batches:
        waveform, frames, labels = _to(batch, device)
        result = attack(waveform, frames, labels)
        correct += (result.output.logits.argmax(-1) == labels).sum().item()
        total += len(labels)
    return correct / max(total, 1)


@torch.no_grad()
def localization_scores(model: nn.Module, batches: Iterable[dict], device="cpu") -> dict[str, float]:
    """Pointing-game hit rate and the rate at which the map's maximum falls on a silent
    distractor, over every frame of clips with ground truth."""
    model.eval()
    hits, on_distractor = [], []
    for batch in batches:
        waveform, frames, _ = _to(batch, device)
        maps = upsample(localization_maps(model(waveform, frames)), frames.shape[-1]).flatten(0, 1).cpu().numpy()
        hits.append(pointing_game(maps, batch["box"].flatten(0, 1).numpy()))
        on_distractor.append(distractor_hits(maps, batch["distractor_box"].flatten(0, 1).numpy()))
    return {"pointing_game": float(np.concatenate(hits).mean()), "distractor_peak": float(np.concatenate(on_distractor).mean())}
