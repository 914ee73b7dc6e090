"""Models prepared for tests: batch norms with statistics far from the identity."""

from __future__ import annotations

import torch
from torch import nn


def with_batch_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics and affine terms far from the identity, so folding has work to do."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(size, generator=generator) * 2 + 0.2)
            module.weight.data.copy_(torch.randn(size, generator=generator))
            module.bias.data.copy_(torch.randn(size, generator=generator))
    return model.eval()
