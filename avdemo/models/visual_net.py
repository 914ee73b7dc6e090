"""ResNet18 with a width multiplier: the visual network of Tian & Xu (CVPR 2021).

At width 1 the state dict has exactly the keys and shapes of torchvision's `resnet18`
without `fc`, so ImageNet weights load where a user has them (the paper's initialisation).
Frames arrive in pixel space; ImageNet normalisation happens here, so attacks and their
budgets live in the [0, 1] pixel space a person can see.
"""

from __future__ import annotations

import torch
from torch import nn

from .audio_net import scaled_channels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_images(frames: torch.Tensor) -> None:
    """A visual net's input must be images `(N, 3, H, W)`; a clear error otherwise."""
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (N, 3, H, W), got shape {tuple(frames.shape)}")


def add_imagenet_normalisation(network: nn.Module) -> None:
    """Give a visual net the `mean` and `std` buffers `(1, 3, 1, 1)` its forward normalises pixels
    with (not saved: they are constants)."""
    network.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
    network.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)


def init_conv_weights(network: nn.Module) -> None:
    """torchvision's initialisation of a convolutional net: Kaiming-normal (fan out) convolutions,
    batch norms at scale 1 and shift 0."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (torchvision's names and layout)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class VisualNet(nn.Module):
    """Frames `(N, 3, H, W)` float in [0, 1] -> (pooled feature `(N, C)`, map `(N, C, h, w)`).

    C = 512 x width; h = w = H / 32 (7 for 224 px). The pooled feature is the spatial mean of
    the map, as in the reference code (its max-pool option acts on an already pooled map).
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        channels = scaled_channels(width)
        stem = channels[0]
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = stem
        for index, out_channels in enumerate(channels, start=1):
            stride = 1 if index == 1 else 2
            layer = nn.Sequential(
                BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels)
            )
            self.add_module(f"layer{index}", layer)
            in_channels = out_channels
        self.feature_dim = in_channels
        add_imagenet_normalisation(self)
        init_conv_weights(self)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(frames)
        x = (frames - self.mean) / self.std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3)), x
