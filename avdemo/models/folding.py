"""Batch norm folded into the convolution before it, for a model that only runs in eval mode.

In eval mode a batch norm is a fixed per-channel affine map, so `bn(conv(x))` is one
convolution with rescaled weights and a bias. The app attacks its models in eval mode, and an
attack step is a forward and a backward pass: folding removes both passes of every batch norm
(about a quarter of a step for the ResNet18 visual net on a CPU). The function is the same up to
float rounding (~1e-6 relative).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv, batch norm) child names that the forward applies one after the other: consecutive
    children of a Sequential, or `convK` / `bnK` attributes (the ResNet convention)."""
    children = dict(module.named_children())
    if isinstance(module, nn.Sequential):
        names = list(children)
        return [(a, b) for a, b in zip(names, names[1:])
                if isinstance(children[a], CONVOLUTIONS) and isinstance(children[b], BATCH_NORMS)]
    return [(name, "bn" + name[4:]) for name, child in children.items()
            if name.startswith("conv") and isinstance(child, CONVOLUTIONS)
            and isinstance(children.get("bn" + name[4:]), BATCH_NORMS)]


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """Fold every batch norm that directly follows a convolution into it, in place; returns the
    model. It must be in eval mode (training would need the batch's statistics), and stays
    inference-only: the folded layers no longer match a checkpoint's names."""
    if model.training:
        raise ValueError("fold batch norm only in eval mode: training normalises by the batch's statistics")
    for module in list(model.modules()):
        for conv_name, bn_name in _pairs(module):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())
    return model
