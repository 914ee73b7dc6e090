"""ExFMem, the external feature memory (Tian & Xu, CVPR 2021, §3.3.2): an attacked feature is
re-expressed as a sparse combination of clean training features and averaged with itself.

For each modality a memory M `(d, K)` holds the features of K training clips (the audio and
visual columns come from the same clips). A feature x is encoded by the Lasso
    min_h ||x - M h||^2 + lambda ||h||_1
solved by ISTA from h = 0, h <- shrink(h - a M^T (M h - x), a lambda) with a = 1 / ||M||_2^2,
stopping when every ||dh|| < tol or after `max_iter` steps; the output is
mix * M h + (1 - mix) * x (the paper's averaging, mix = 0.5). The loop is plain autograd, so
attacks differentiate through it: the defense is attacked end to end.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import AVOutput

LAMBDA = 0.1
MIX = 0.5
TOLERANCE = 8e-4
MAX_ITERATIONS = 2000


def soft_threshold(x: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.relu(x.abs() - threshold)


def ista(
    x: torch.Tensor,
    memory: torch.Tensor,
    lam: float = LAMBDA,
    tol: float = TOLERANCE,
    max_iter: int = MAX_ITERATIONS,
    lipschitz: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Sparse codes `(B, K)` of features x `(B, d)` over a memory `(K, d)` (one feature per row),
    and the number of iterations run."""
    if lipschitz is None:
        lipschitz = torch.linalg.matrix_norm(memory.float(), ord=2).pow(2).to(memory.dtype)
    step = 1.0 / lipschitz
    codes = torch.zeros(x.shape[0], memory.shape[0], dtype=x.dtype, device=x.device)
    for iteration in range(1, max_iter + 1):
        # M^T (M h - x), computed through the d-dim residual: 2 B K d operations, not B K^2.
        gradient = (codes @ memory - x) @ memory.T
        updated = soft_threshold(codes - step * gradient, step * lam)
        change = (updated - codes).detach().norm(dim=1).max()
        codes = updated
        if change < tol:
            break
    return codes, iteration


class FeatureMemory(nn.Module):
    """One modality's memory: features `(B, d)` -> denoised features `(B, d)`."""

    def __init__(self, memory: torch.Tensor, lam: float = LAMBDA, mix: float = MIX,
                 tol: float = TOLERANCE, max_iter: int = MAX_ITERATIONS):
        super().__init__()
        if memory.dim() != 2:
            raise ValueError(f"a memory is (K, d), got shape {tuple(memory.shape)}")
        self.register_buffer("memory", memory.float())
        self.register_buffer("lipschitz", torch.linalg.matrix_norm(memory.float(), ord=2).pow(2))
        self.lam, self.mix, self.tol, self.max_iter = lam, mix, tol, max_iter
        self.last_iterations = 0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        codes, self.last_iterations = ista(features, self.memory, self.lam, self.tol, self.max_iter, self.lipschitz)
        return self.mix * (codes @ self.memory) + (1 - self.mix) * features


class ExFMem(nn.Module):
    """Any audio-visual network with a `head(audio, visual)` (see `AVNet`), its features
    denoised by audio and visual memories before fusion. Same inputs and `AVOutput` as the
    network; `audio`, `visual`, `fused` and `logits` are the denoised ones."""

    def __init__(self, model: nn.Module, audio_memory: torch.Tensor, visual_memory: torch.Tensor, **options):
        super().__init__()
        if not hasattr(model, "head"):
            raise TypeError("ExFMem needs an audio-visual network with a head(audio, visual) method")
        self.model = model
        self.audio_memory = FeatureMemory(audio_memory, **options)
        self.visual_memory = FeatureMemory(visual_memory, **options)

    @property
    def config(self):
        return self.model.config

    def forward(self, waveform: torch.Tensor, frames: torch.Tensor) -> AVOutput:
        output = self.model(waveform, frames)
        audio = self.audio_memory(output.audio)
        visual = self.visual_memory(output.visual)
        fused, logits = self.model.head(audio, visual)
        return AVOutput(
            logits=logits,
            fused=fused,
            audio=audio,
            visual=visual,
            visual_frames=output.visual_frames,
            visual_map=output.visual_map,
            attention=output.attention,
        )


@torch.no_grad()
def collect_memory(model: nn.Module, batches, size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio and visual features `(K, d)` each of the first `size` clips of `batches` (dicts with
    `waveform` `(B, L)` and `frames` `(B, T, 3, H, W)`), aligned row by row (same clips)."""
    model.eval()
    audio, visual, count = [], [], 0
    device = next(model.parameters()).device
    for batch in batches:
        output = model(batch["waveform"].to(device), batch["frames"].to(device))
        audio.append(output.audio.float().cpu())
        visual.append(output.visual.float().cpu())
        count += len(output.audio)
        if count >= size:
            break
    return torch.cat(audio)[:size], torch.cat(visual)[:size]
