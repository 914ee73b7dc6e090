"""Batch norm folded into convolutions: the same function and input gradients, no batch norm
left behind a convolution, and never on a model that is training."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from avdemo.models import ModelConfig, build_model
from avdemo.models.folding import fold_batch_norm

from model_factory import with_batch_statistics




@pytest.mark.parametrize("config", [ModelConfig(num_classes=5, width=1 / 8, attention=True, correspondence=True),
                                    ModelConfig(num_classes=5, width=1 / 8, fusion="sum"),
                                    ModelConfig(num_classes=5, kind="audio", width=1 / 8)], ids=["attention", "sum", "audio"])
def test_folded_model_is_the_same_function_with_the_same_input_gradients(config):
    torch.manual_seed(1)
    model = with_batch_statistics(build_model(config))
    folded = fold_batch_norm(copy.deepcopy(model))
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in folded.modules())
    waveform = (torch.rand(2, 65535) * 2 - 1) * 0.5
    frames = torch.rand(2, 2, 3, 64, 64)
    results = []
    for network in (model, folded):
        inputs = (waveform.clone().requires_grad_(True), frames.clone().requires_grad_(True))
        output = network(*inputs)
        grads = torch.autograd.grad(output.logits.logsumexp(-1).sum(), inputs, allow_unused=True)
        results.append((output, grads))
    (before, grads_before), (after, grads_after) = results
    torch.testing.assert_close(after.logits, before.logits, rtol=1e-4, atol=1e-4)
    for name in ("audio", "visual", "visual_map", "cell_embedding"):
        if getattr(before, name, None) is not None:
            torch.testing.assert_close(getattr(after, name), getattr(before, name), rtol=1e-4, atol=1e-4)
    for grad_before, grad_after in zip(grads_before, grads_after):
        if grad_before is not None:
            torch.testing.assert_close(grad_after, grad_before, rtol=1e-3, atol=1e-5)


def test_folding_refuses_a_training_model():
    model = build_model(ModelConfig(num_classes=3, width=1 / 16))
    with pytest.raises(ValueError, match="only in eval mode"):
        fold_batch_norm(model.train())
