"""NI-FGSM: the gradient is taken at the Nesterov look-ahead point, checked against an
independent implementation of Lin et al.'s Algorithm 1, and it fools a trained model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avdemo.attacks import create_attack

from toy_task import accuracy, toy_batch, train_toy_model


def _reference_ni_fgsm(model, waveform, frames, labels, eps, alpha, steps, decay):
    """Algorithm 1 of Lin et al. (2020) on the frames only, written out step by step."""
    adv, momentum = frames.clone(), torch.zeros_like(frames)
    for _ in range(steps):
        ahead = (adv + alpha * decay * momentum).clamp(0, 1).requires_grad_(True)
        loss = F.cross_entropy(model(waveform, ahead).logits, labels, reduction="sum")
        grad, = torch.autograd.grad(loss, ahead)
        momentum = decay * momentum + grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1, 1)
        adv = (frames + (adv + alpha * momentum.sign() - frames).clamp(-eps, eps)).clamp(0, 1)
    return adv


@pytest.fixture(scope="module")
def model():
    return train_toy_model()


def test_ni_fgsm_follows_the_look_ahead_gradient(model):
    waveform, frames, labels = toy_batch(8, seed=21)
    ours = create_attack("nifgsm", model, eps_visual=8 / 255, step_visual=2 / 255, steps=5, decay=1.0)
    result = ours(waveform, frames, labels)
    expected = _reference_ni_fgsm(model, waveform, frames, labels, 8 / 255, 2 / 255, 5, 1.0)
    assert (result.frames - expected).abs().max() <= 1e-6
    # Without the look-ahead (MI-FGSM) the path differs: the test would notice a missing look-ahead.
    mim = create_attack("mim", model, eps_visual=8 / 255, step_visual=2 / 255, steps=5, decay=1.0)(waveform, frames, labels)
    assert (mim.frames - expected).abs().max() > 1e-3


def test_ni_fgsm_fools_a_trained_model_on_both_modalities(model):
    waveform, frames, labels = toy_batch(64, seed=22)
    result = create_attack("nifgsm", model, eps_audio=0.03, eps_visual=8 / 255, steps=10)(waveform, frames, labels)
    assert accuracy(model, waveform, frames, labels) >= 0.95
    assert accuracy(model, result.waveform, result.frames, labels) <= 0.1
