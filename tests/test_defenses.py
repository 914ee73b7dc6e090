"""The CVPR 2021 defenses: similarity terms, PCL, and the ExFMem memory attacked end to end."""

from __future__ import annotations

import pytest
import torch

from avdemo.attacks import create_attack
from avdemo.defenses import ExFMem, FeatureMemory, MaxSim, MinSim, PrototypeConformity, collect_memory
from avdemo.defenses.exfmem import ista
from avdemo.models import AVOutput

from toy_task import toy_batch, train_toy_model


def _output(audio, visual, fused=None):
    return AVOutput(logits=torch.zeros(len(audio), 3), fused=fused if fused is not None else audio, audio=audio, visual=visual)


def test_similarity_terms_are_the_cosine_and_its_complement():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    torch.testing.assert_close(MinSim()(_output(a, v)), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(MaxSim(weight=2.0)(_output(a, v)), torch.tensor([0.0, 2.0]))


def test_pcl_pulls_to_the_own_centre_and_pushes_from_the_others():
    pcl = PrototypeConformity(num_classes=3, dim=4)
    with torch.no_grad():
        pcl.centres.copy_(torch.eye(3, 4))
    labels = torch.tensor([0, 0])
    features = torch.stack([torch.eye(4)[0], torch.eye(4)[1]])  # at its own centre / at another class's
    loss = pcl(_output(features, features, fused=features), labels)
    assert loss[0] < loss[1]
    loss.sum().backward()
    assert pcl.centres.grad is not None and pcl.centres.grad.abs().sum() > 0


def test_ista_recovers_a_sparse_code_and_stops_early():
    torch.manual_seed(0)
    memory = torch.randn(256, 32).relu()
    codes = torch.zeros(2, 256)
    codes[0, 5], codes[1, 7], codes[1, 200] = 1.0, 0.6, 0.8
    features = codes @ memory
    found, iterations = ista(features, memory)
    assert iterations < 2000
    assert set(found[0].topk(1).indices.tolist()) == {5} and set(found[1].topk(2).indices.tolist()) == {7, 200}
    error = (found @ memory - features).norm(dim=1) / features.norm(dim=1)
    assert (error < 0.2).all()


def test_feature_memory_denoises_towards_its_span_and_passes_gradients():
    torch.manual_seed(1)
    memory = torch.randn(128, 16).relu()
    layer = FeatureMemory(memory)
    clean = memory[3:4] * 1.0
    noisy = (clean + 0.3 * torch.randn_like(clean)).requires_grad_(True)
    denoised = layer(noisy)
    assert (denoised - clean).norm() < (noisy - clean).norm()
    denoised.sum().backward()
    assert noisy.grad is not None and noisy.grad.abs().sum() > 0
    # With mix = 0 the memory is bypassed.
    torch.testing.assert_close(FeatureMemory(memory, mix=0.0)(clean), clean)


def test_exfmem_wraps_a_model_and_is_attacked_end_to_end():
    model = train_toy_model(steps=60)
    waveform, frames, labels = toy_batch(64, seed=30)
    batches = [{"waveform": waveform[i : i + 16], "frames": frames[i : i + 16]} for i in range(0, 64, 16)]
    audio_memory, visual_memory = collect_memory(model, batches, size=48)
    assert audio_memory.shape == (48, model.audio_net.feature_dim) and visual_memory.shape[0] == 48
    defended = ExFMem(model, audio_memory, visual_memory, max_iter=300).eval()
    out = defended(waveform[:8], frames[:8])
    assert out.logits.shape == (8, 4) and out.attention is None and out.visual_map is not None
    result = create_attack("pgd", defended, eps_audio=0.02, eps_visual=4 / 255, steps=3, extra_loss=MinSim())(
        waveform[:8], frames[:8], labels[:8]
    )
    assert result.delta_frames.abs().max() > 0 and result.delta_waveform.abs().max() <= 0.02 + 1e-6
    with pytest.raises(TypeError, match="head"):
        ExFMem(torch.nn.Linear(2, 2), audio_memory, visual_memory)
