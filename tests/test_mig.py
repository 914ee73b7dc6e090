"""MIG: the step follows the momentum of integrated gradients from a zero baseline, checked
against the public code's loop written out independently; it fools a trained model."""

from __future__ import annotations

import pytest
import torch

from avdemo.attacks import create_attack

from toy_task import accuracy, toy_batch, train_toy_model


def _reference_mig(model, waveform, frames, labels, eps, alpha, steps, points):
    """TransferAttack's MIG on the frames: loss -p_y summed over x k/s, k = 1..s; IG = x grad / s."""
    adv, momentum = frames.clone(), torch.zeros_like(frames)
    for _ in range(steps):
        adv.requires_grad_(True)
        path = torch.cat([adv * (k / points) for k in range(1, points + 1)])
        probability = torch.softmax(model(waveform.repeat(points, 1), path).logits, -1)
        loss = -probability.gather(1, labels.repeat(points)[:, None]).sum()
        grad, = torch.autograd.grad(loss, adv)
        integrated = adv.detach() * grad / points
        momentum = momentum + integrated / integrated.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1, 1)
        adv = (frames + (adv.detach() + alpha * momentum.sign() - frames).clamp(-eps, eps)).clamp(0, 1)
    return adv


@pytest.fixture(scope="module")
def model():
    return train_toy_model()


def test_mig_follows_the_integrated_gradient(model):
    waveform, frames, labels = toy_batch(6, seed=31)
    result = create_attack("mig", model, eps_visual=8 / 255, step_visual=2 / 255, steps=4, path_points=5)(
        waveform, frames, labels)
    expected = _reference_mig(model, waveform, frames, labels, 8 / 255, 2 / 255, 4, 5)
    assert (result.frames - expected).abs().max() <= 1e-5
    one_point = create_attack("mig", model, eps_visual=8 / 255, step_visual=2 / 255, steps=4, path_points=1)(
        waveform, frames, labels)
    assert (one_point.frames - expected).abs().max() > 1e-3  # the path matters: a test that can fail


def test_mig_records_the_point_itself_in_the_trace_and_hurts_a_trained_model(model):
    waveform, frames, labels = toy_batch(48, seed=32)
    result = create_attack("mig", model, eps_audio=0.03, eps_visual=8 / 255, steps=10, path_points=4)(
        waveform, frames, labels)
    with torch.no_grad():
        clean = torch.softmax(model(waveform, frames).logits, -1).gather(1, labels[:, None])[:, 0]
    torch.testing.assert_close(result.trace.loss[0], -clean)  # the objective at x itself, not at x / s
    # -p_y saturates where the model is sure, so MIG is a weaker white-box attack than PGD; it still bites.
    assert accuracy(model, waveform, frames, labels) >= 0.95
    assert accuracy(model, result.waveform, result.frames, labels) <= 0.75
