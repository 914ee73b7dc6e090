"""A small VGG-style visual network: the second visual backbone (transfer across architectures).

Plain stacks of 3x3 convolution + batch norm + ReLU with 2x2 max pools between them and no
residual connections: the architecture family of VGG (Simonyan & Zisserman, 2015), not the
ResNet18 of `VisualNet`, so that attacks crafted on one transfer to the other across a real
change of architecture. The first convolution has stride 2 (full-resolution layers would cost
this CPU twice `VisualNet`'s time per frame), then four stages of (conv-BN-ReLU) x k and a max
pool, with k = 1, 2, 2, 3: H / 32 in all, a 7 x 7 map at 224 px, `VisualNet`'s grid. At width 1
the channels are 64, then 64-128-256-512 (7.0 M parameters); at width 1/4, 16, then
16-32-64-128 (0.44 M parameters, 0.19 G multiply-adds per 224 px frame, against `VisualNet`'s
0.70 M and 0.14 G; on this 2-core CPU about 1.5x its time per frame, in training and in eval).

Same contract as `VisualNet`: frames `(N, 3, H, W)` in [0, 1] -> (pooled feature `(N, C)`, the
spatial mean of the map; map `(N, C, h, w)`), ImageNet normalisation inside, `feature_dim`.
"""

from __future__ import annotations

import torch
from torch import nn

from .audio_net import scaled_channels
from .visual_net import add_imagenet_normalisation, check_images, init_conv_weights

STEM_CHANNELS = 64
BASE_CHANNELS = (64, 128, 256, 512)
CONVS_PER_STAGE = (1, 2, 2, 3)


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class VGGVisualNet(nn.Module):
    """Frames `(N, 3, H, W)` float in [0, 1] -> (pooled feature `(N, C)`, map `(N, C, h, w)`).

    C = 512 x width; h = floor(H / 32), w = floor(W / 32) (7 for 224 px; H, W >= 32). After
    the strided first convolution, each stage is (conv-BN-ReLU) x k then a 2x2 max pool, as in
    VGG; the map is the last pool's output (VGG's pool5), so its features are >= 0 like
    `VisualNet`'s.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        stem, *channels = scaled_channels(width, (STEM_CHANNELS, *BASE_CHANNELS))
        layers: list[nn.Module] = _conv_bn_relu(3, stem, stride=2)
        in_channels = stem
        for out_channels, convs in zip(channels, CONVS_PER_STAGE):
            for _ in range(convs):
                layers += _conv_bn_relu(in_channels, out_channels)
                in_channels = out_channels
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.feature_dim = in_channels
        add_imagenet_normalisation(self)
        init_conv_weights(self)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(frames)
        if min(frames.shape[2:]) < 32:
            raise ValueError(f"frames need at least 32 x 32 pixels, got {tuple(frames.shape[2:])}")
        x = self.features((frames - self.mean) / self.std)
        return x.mean(dim=(2, 3)), x
