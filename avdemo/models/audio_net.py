"""The 1-D convolutional audio network of Tian & Xu (CVPR 2021), appendix A.3.

Four blocks of (Conv1d k3 s2 p1 + BN + ReLU) x 2 + MaxPool1d(2) on the raw waveform, then a
global max pool over time. At width 1 the channels are 64-128-256-512 (1.57 M parameters);
the width multiplier scales every channel count so that the model zoo fits its size budget.
"""

from __future__ import annotations

import torch
from torch import nn

BASE_CHANNELS = (64, 128, 256, 512)


def scaled_channels(width: float, base: tuple[int, ...] = BASE_CHANNELS) -> tuple[int, ...]:
    """Channel counts for a width multiplier (at least 1 channel each)."""
    if width <= 0:
        raise ValueError(f"width multiplier must be positive, got {width}")
    return tuple(max(1, round(c * width)) for c in base)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv1d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(inplace=True),
    ]


class AudioNet(nn.Module):
    """Waveform `(B, L)` float in [-1, 1] -> audio feature `(B, feature_dim)`, feature >= 0.

    The network downsamples time by 4096, so L must be at least 4096 (65535 samples give 16
    steps before the global max pool).
    """

    min_samples = 4096

    def __init__(self, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels in scaled_channels(width):
            layers += _conv_bn_relu(in_channels, out_channels)
            layers += _conv_bn_relu(out_channels, out_channels)
            layers.append(nn.MaxPool1d(kernel_size=2, stride=2))
            in_channels = out_channels
        self.net = nn.Sequential(*layers)
        self.feature_dim = in_channels

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be (B, L), got shape {tuple(waveform.shape)}")
        if waveform.shape[1] < self.min_samples:
            raise ValueError(f"waveform needs at least {self.min_samples} samples, got {waveform.shape[1]}")
        return self.net(waveform.unsqueeze(1)).amax(dim=2)
