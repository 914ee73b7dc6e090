"""ExFMem's Lasso solvers: the reference rule kept as published, FISTA solving the Lasso,
gradients through the unrolled loop, and the straight-through (BPDA) switch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avdemo.defenses.exfmem import (
    MAX_ITERATIONS,
    MIX,
    TOLERANCE,
    ExFMem,
    FeatureMemory,
    fista,
    ista,
    lasso_objective,
    soft_threshold,
    solve_lasso,
)
from avdemo.models import AVOutput


def _problem(seed: int = 0, atoms: int = 64, dim: int = 16, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A memory `(atoms, dim)` and features `(batch, dim)`, non-negative plus an offset like
    ReLU features: the rows are correlated, so L is large next to the curvature on a support."""
    generator = torch.Generator().manual_seed(seed)
    memory = torch.randn(atoms, dim, generator=generator).relu() + 0.2
    features = torch.randn(batch, dim, generator=generator).relu() + 0.2
    return memory, features


def test_lasso_objective_is_half_the_squared_residual_plus_the_l1_term():
    memory = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    x = torch.tensor([[1.0, 1.0], [3.0, -1.0]])
    codes = torch.tensor([[0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])
    # Row 0: x - h M = (1, 1) - (-0.5, -1) = (1.5, 2) -> 0.5 * 6.25 + lam * 1.5.
    torch.testing.assert_close(lasso_objective(x, codes, memory, 0.2), torch.tensor([3.125 + 0.3, 5.0]))


def test_fista_matches_a_long_ista_run_where_the_reference_rule_stops_short():
    memory, x = _problem()
    lam = 0.5
    optimum, _ = ista(x, memory, lam, tol=0.0, max_iter=10_000)
    codes, iterations = fista(x, memory, lam)
    reference, reference_iterations = ista(x, memory, lam)
    best, found, early = (lasso_objective(x, c, memory, lam) for c in (optimum, codes, reference))
    assert iterations < 1000
    torch.testing.assert_close(found, best, rtol=1e-4, atol=0.0)
    # The absolute rule fires while the Lasso is still at least 0.5 % above its optimum.
    assert reference_iterations < MAX_ITERATIONS and (early > found * 1.005).all()


def test_fista_reaches_the_closed_form_on_an_orthonormal_dictionary():
    # Orthonormal rows: 0.5 ||x - h M||^2 = 0.5 ||x M^T - h||^2 + const, minimised by shrinking x M^T.
    generator = torch.Generator().manual_seed(2)
    memory = torch.linalg.qr(torch.randn(16, 8, generator=generator)).Q.T  # (8, 16)
    x = torch.randn(5, 16, generator=generator)
    lam = 0.4
    expected = soft_threshold(x @ memory.T, lam)
    assert (expected == 0).any() and (expected != 0).any()
    codes, iterations = fista(x, memory, lam)
    torch.testing.assert_close(codes, expected, rtol=1e-5, atol=1e-6)
    assert iterations <= 3  # L = 1: the first step lands on the solution, the next confirms it


def test_reference_solver_stops_by_its_absolute_rule():
    memory, x = _problem(seed=1)
    codes, iterations = solve_lasso(x, memory, solver="reference")
    assert 2 < iterations < MAX_ITERATIONS
    before, _ = ista(x, memory, max_iter=iterations - 1, tol=0.0)
    two_before, _ = ista(x, memory, max_iter=iterations - 2, tol=0.0)
    torch.testing.assert_close(solve_lasso(x, memory, solver="reference")[0], codes, rtol=0, atol=0)
    assert (codes - before).norm(dim=1).max() < TOLERANCE <= (before - two_before).norm(dim=1).max()


def test_feature_memory_default_is_the_reference_solver_bit_for_bit():
    memory, x = _problem(seed=3)
    layer = FeatureMemory(memory)
    codes, iterations = ista(x, memory)
    torch.testing.assert_close(layer(x), MIX * (codes @ memory) + (1 - MIX) * x, rtol=0, atol=0)
    assert layer.solver == "reference" and layer.last_iterations == iterations


def test_gradients_flow_through_fista_and_match_finite_differences():
    memory, x = _problem(seed=4, atoms=8, dim=4, batch=2)
    memory, x = memory.double(), x.double().requires_grad_(True)
    layer = FeatureMemory(memory, solver="fista", rtol=0.0, max_iter=40).double()
    (gradient,) = torch.autograd.grad(layer(x).pow(2).sum(), x)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda features: layer(features), (x,), eps=1e-6, atol=1e-5)


class _TinyAV(nn.Module):
    """An AV network whose audio and visual features are its inputs themselves, so gradients
    with respect to the inputs are gradients with respect to the features."""

    def __init__(self, dim: int):
        super().__init__()
        self.classifier = nn.Linear(2 * dim, 3)

    def head(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused = torch.cat([audio, visual], dim=1)
        return fused, self.classifier(torch.tanh(fused))

    def forward(self, waveform: torch.Tensor, frames: torch.Tensor) -> AVOutput:
        fused, logits = self.head(waveform, frames)
        return AVOutput(logits=logits, fused=fused, audio=waveform, visual=frames)


def test_straight_through_keeps_outputs_and_passes_the_identity_gradient():
    audio_memory, audio = _problem(seed=5, batch=3)
    visual_memory, visual = _problem(seed=6, batch=3)
    labels = torch.tensor([0, 1, 2])
    defended = ExFMem(_TinyAV(16), audio_memory, visual_memory, solver="fista", max_iter=300).eval()

    def attack_gradient():
        inputs = audio.clone().requires_grad_(True), visual.clone().requires_grad_(True)
        output = defended(*inputs)
        return output, torch.autograd.grad(nn.functional.cross_entropy(output.logits, labels), inputs)

    unrolled, unrolled_gradient = attack_gradient()
    defended.straight_through = True
    bpda, bpda_gradient = attack_gradient()
    assert defended.audio_memory.last_iterations > 1
    for field in ("logits", "fused", "audio", "visual"):
        torch.testing.assert_close(getattr(bpda, field), getattr(unrolled, field), rtol=0, atol=0)
    # With the memory removed: the head's gradient at the denoised features.
    features = bpda.audio.detach().requires_grad_(True), bpda.visual.detach().requires_grad_(True)
    _, logits = defended.model.head(*features)
    identity_gradient = torch.autograd.grad(nn.functional.cross_entropy(logits, labels), features)
    for got, expected, through_solver in zip(bpda_gradient, identity_gradient, unrolled_gradient):
        torch.testing.assert_close(got, expected)
        assert not torch.allclose(got, through_solver, rtol=1e-3, atol=1e-6)


def test_exfmem_passes_solver_options_to_both_memories():
    memory, _ = _problem()
    defended = ExFMem(_TinyAV(16), memory, memory, solver="fista", rtol=1e-4, max_iter=50, lam=0.2)
    for layer in (defended.audio_memory, defended.visual_memory):
        assert (layer.solver, layer.rtol, layer.max_iter, layer.lam) == ("fista", 1e-4, 50, 0.2)
    assert defended.straight_through is False


def test_bad_memories_and_solver_names_are_refused():
    with pytest.raises(ValueError, match=r"\(K, d\)"):
        FeatureMemory(torch.rand(4, 8, 2))
    with pytest.raises(ValueError, match="unknown ExFMem solver 'lars'"):
        FeatureMemory(torch.rand(4, 8), solver="lars")
    with pytest.raises(ValueError, match="unknown ExFMem solver"):
        solve_lasso(torch.rand(1, 8), torch.rand(4, 8), solver="ISTA")
