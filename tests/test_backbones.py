"""The second audio and visual backbones (issue 14, transfer across architectures): the VGG-style
visual net and the log-mel CNN audio net keep the contracts of `VisualNet` and `AudioNet`, the
log-mel front end passes gradients to the waveform, every backbone pair builds and runs with
concat and sum fusion (and with the correspondence and attention heads on a VGG map), configs
round-trip through a card, batch-norm folding keeps the function, and the recipes fit together."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from torch import nn

from avdemo.models import (
    AUDIO_BACKBONES,
    VISUAL_BACKBONES,
    AudioNet,
    LogMelAudioNet,
    ModelConfig,
    VGGVisualNet,
    VisualNet,
    architecture_config,
    build_model,
)
from avdemo.models.folding import fold_batch_norm
from avdemo.models.logmel_audio import HOP, N_FFT, N_MELS, SAMPLE_RATE, LogMel, mel_filterbank
from avdemo.models.networks import audio_backbone, visual_backbone
from avdemo.zoo import CARD_FORMAT, ROLES, list_models, load_model, models_with_role, save_tensors

from model_factory import with_batch_statistics

TINY = 1 / 16  # 32-d features: every backbone's feature_dim is 512 x width
PAIRS = [(a, v) for a in AUDIO_BACKBONES for v in VISUAL_BACKBONES]



def _parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _inputs(batch: int = 2, steps: int = 2, samples: int = 8192, size: int = 64):
    generator = torch.Generator().manual_seed(0)
    waveform = (torch.rand(batch, samples, generator=generator) * 2 - 1) * 0.5
    return waveform, torch.rand(batch, steps, 3, size, size, generator=generator)


# --- the VGG-style visual net ---------------------------------------------------------------


def test_vgg_keeps_the_visual_net_contract():
    torch.manual_seed(0)
    net = VGGVisualNet(0.25).eval()
    assert net.feature_dim == VisualNet(0.25).feature_dim == 128
    frames = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        pooled, feature_map = net(frames)
    assert pooled.shape == (2, 128) and feature_map.shape == (2, 128, 7, 7)
    torch.testing.assert_close(pooled, feature_map.mean(dim=(2, 3)))
    assert (feature_map >= 0).all()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 256, 256))[1].shape[2:] == (8, 8)  # H / 32, as the mosaic needs
        assert net(torch.rand(1, 3, 100, 130))[1].shape[2:] == (3, 4)
    with pytest.raises(ValueError, match="frames must be"):
        net(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 32"):
        net(torch.rand(1, 3, 16, 64))


def test_vgg_is_plain_and_normalises_inside():
    net = VGGVisualNet(TINY).eval()
    assert {"mean", "std"}.isdisjoint(net.state_dict())  # buffers, not weights
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.kernel_size == (3, 3) for m in convs) and len(convs) == 9
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 4
    mean_frame = net.mean.expand(1, 3, 64, 64)  # ImageNet's mean colour is the network's zero input
    with torch.no_grad():
        expected = net.features(torch.zeros(1, 3, 64, 64))
        torch.testing.assert_close(net(mean_frame)[1], expected)


def test_vgg_costs_about_what_the_resnet_does():
    assert 0.4 <= _parameters(VGGVisualNet(0.25)) / _parameters(VisualNet(0.25)) <= 1.2


# --- the log-mel CNN audio net ----------------------------------------------------------------


def test_logmel_keeps_the_audio_net_contract():
    torch.manual_seed(0)
    net = LogMelAudioNet(0.25).eval()
    assert net.feature_dim == AudioNet(0.25).feature_dim == 128
    assert net.min_samples == AudioNet.min_samples
    with torch.no_grad():
        for samples in (net.min_samples, 16384, 65535):
            features = net(torch.rand(3, samples) * 2 - 1)
            assert features.shape == (3, 128) and (features >= 0).all() and torch.isfinite(features).all()
        assert torch.isfinite(net(torch.zeros(1, 4096))).all()  # silence (edge segments are zero-padded)
    with pytest.raises(ValueError, match="at least 4096"):
        net(torch.rand(1, 4095))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        net(torch.rand(1, 1, 8192))
    assert {"logmel.window", "logmel.filterbank"}.isdisjoint(net.state_dict())  # rebuilt, never stored
    assert 0.5 <= _parameters(net) / _parameters(AudioNet(0.25)) <= 2


def test_mel_filterbank_and_front_end_values():
    bank = mel_filterbank()
    assert bank.shape == (N_FFT // 2 + 1, N_MELS) and (bank >= 0).all() and (bank <= 1).all()
    assert (bank.sum(dim=0) > 0).all()  # no empty band
    peaks = bank.argmax(dim=0)
    assert (peaks[1:] >= peaks[:-1]).all()  # bands rise in frequency
    front = LogMel()
    time = torch.arange(16384) / SAMPLE_RATE
    tone = 0.5 * torch.sin(2 * torch.pi * 1000 * time)
    bands = front(tone[None])
    assert bands.shape == (1, N_MELS, 1 + 16384 // HOP)
    bin_of_1000 = round(1000 * N_FFT / SAMPLE_RATE)
    assert bank[bin_of_1000, bands[0, :, 32].argmax()] > 0.5  # the loudest band holds 1 kHz
    assert bands[0, :, 32].max() > torch.log(torch.tensor(1e-2))  # a loud tone is far above the floor
    assert front(torch.zeros(1, 4096)).max() == torch.log(torch.tensor(1e-6))  # silence sits on the floor


def test_gradients_reach_the_waveform_through_the_log_mel_front_end():
    torch.manual_seed(0)
    net = with_batch_statistics(LogMelAudioNet(TINY))
    waveform = ((torch.rand(2, 8192) * 2 - 1) * 0.3).requires_grad_(True)
    net(waveform).sum().backward()
    assert waveform.grad is not None and torch.isfinite(waveform.grad).all()
    assert (waveform.grad.abs() > 0).float().mean() > 0.9  # every sample is heard
    # The front end is smooth: its autograd derivative matches a finite difference.
    front = LogMel()
    point = (torch.rand(1, 4096, dtype=torch.float32) * 2 - 1) * 0.3
    direction = torch.randn_like(point)
    x = point.clone().requires_grad_(True)
    front(x).sum().backward()
    step = 1e-3
    numeric = (front(point + step * direction).sum() - front(point - step * direction).sum()) / (2 * step)
    torch.testing.assert_close((x.grad * direction).sum(), numeric, rtol=2e-2, atol=1e-2)


# --- every pair in the networks ---------------------------------------------------------------


@pytest.mark.parametrize("fusion", ["concat", "sum"])
@pytest.mark.parametrize("audio,visual", PAIRS)
def test_every_backbone_pair_runs_in_avnet(audio, visual, fusion):
    torch.manual_seed(0)
    config = architecture_config(f"av-{fusion}", 5, TINY, audio_backbone=audio, visual_backbone=visual)
    model = build_model(config).eval()
    assert isinstance(model.audio_net, AUDIO_BACKBONES[audio]) and isinstance(model.visual_net, VISUAL_BACKBONES[visual])
    waveform, frames = _inputs()
    with torch.no_grad():
        output = model(waveform, frames)
    assert output.logits.shape == (2, 5)
    assert output.fused.shape == (2, 64 if fusion == "concat" else 32)
    assert output.audio_segments.shape == (2, 2, 32) and output.visual_map.shape == (2, 2, 32, 2, 2)
    model.train()
    loss = nn.functional.cross_entropy(model(waveform, frames).logits, torch.tensor([0, 1]))
    loss.backward()
    assert all(p.grad is not None for p in model.audio_net.parameters())
    assert all(p.grad is not None for p in model.visual_net.parameters())


@pytest.mark.parametrize("audio,visual", [("logmel", "resnet18"), ("waveform", "vgg")])
def test_unimodal_networks_build_on_either_backbone(audio, visual):
    waveform, frames = _inputs()
    audio_only = build_model(architecture_config("audio-only", 3, TINY, audio_backbone=audio)).eval()
    visual_only = build_model(architecture_config("visual-only", 3, TINY, visual_backbone=visual)).eval()
    with torch.no_grad():
        assert audio_only(waveform, frames).audio_segments.shape == (2, 2, 32)
        assert visual_only(None, frames).visual_map.shape == (2, 2, 32, 2, 2)
    assert isinstance(audio_only.audio_net, AUDIO_BACKBONES[audio])
    assert isinstance(visual_only.visual_net, VISUAL_BACKBONES[visual])


def test_correspondence_attention_and_mosaic_work_on_a_vgg_map():
    from avdemo.measures.localization import localization_maps
    from avdemo.training.train import TrainingObjective

    torch.manual_seed(0)
    config = architecture_config("av-attention", 4, TINY, correspondence=True, audio_backbone="logmel",
                                 visual_backbone="vgg")
    model = build_model(config)
    waveform, frames = _inputs(batch=4, steps=1)
    objective = TrainingObjective(model, None, correspondence_weight=1.0, mosaic_weight=1.0)
    loss, logits = objective(waveform, frames, torch.arange(4))
    loss.backward()
    assert torch.isfinite(loss) and logits.shape == (4, 4)
    assert model.correspondence.cell_projection.weight.grad is not None
    model.eval()
    with torch.no_grad():
        output = model(waveform, frames)
    torch.testing.assert_close(output.attention.sum(dim=(2, 3)), torch.ones(4, 1))
    maps = localization_maps(output)
    assert maps.shape == (4, 1, 2, 2) and maps.min() >= 0 and maps.max() <= 1


def test_feature_cosine_maps_work_without_a_correspondence_head():
    from avdemo.measures.localization import localization_maps, map_kind

    config = architecture_config("av-sum", 4, TINY, audio_backbone="logmel", visual_backbone="vgg")
    assert map_kind(config) == "feature cosine"
    with torch.no_grad():
        maps = localization_maps(build_model(config).eval()(*_inputs()))
    assert maps.shape == (2, 2, 2, 2) and torch.isfinite(maps).all()


def test_unknown_backbones_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown audio backbone 'mfcc'.*logmel.*waveform"):
        ModelConfig(num_classes=3, audio_backbone="mfcc")
    with pytest.raises(ValueError, match=r"unknown visual backbone 'vit'.*resnet18.*vgg"):
        ModelConfig(num_classes=3, visual_backbone="vit")
    with pytest.raises(ValueError, match="unknown audio backbone"):
        audio_backbone("mfcc", 1.0)
    with pytest.raises(ValueError, match="unknown visual backbone"):
        visual_backbone("vit", 1.0)


def test_defaults_are_the_papers_backbones():
    config = ModelConfig(num_classes=3, width=TINY)
    assert (config.audio_backbone, config.visual_backbone) == ("waveform", "resnet18")
    model = build_model(config)
    assert type(model.audio_net) is AudioNet and type(model.visual_net) is VisualNet


# --- cards and folding ------------------------------------------------------------------------


@pytest.mark.parametrize("audio,visual", [("logmel", "vgg"), ("waveform", "vgg"), ("logmel", "resnet18")])
def test_configs_round_trip_through_a_card(tmp_path, audio, visual):
    torch.manual_seed(0)
    config = architecture_config("av-concat", 4, TINY, audio_backbone=audio, visual_backbone=visual)
    model = with_batch_statistics(build_model(config))
    weights = save_tensors(tmp_path / "pair.safetensors", model.state_dict(), int8_weights=True)
    card = {"format": CARD_FORMAT, "name": "pair", "description": "test", "config": config.to_dict(),
            "classes": ["a", "b", "c", "d"], "weights": weights}
    (tmp_path / "pair.json").write_text(json.dumps(card))
    assert ModelConfig(**json.loads((tmp_path / "pair.json").read_text())["config"]) == config
    loaded = load_model("pair", "cpu", tmp_path)
    assert type(loaded.audio_net) is AUDIO_BACKBONES[audio] and type(loaded.visual_net) is VISUAL_BACKBONES[visual]
    waveform, frames = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(waveform, frames).logits, model(waveform, frames).logits, atol=0.1, rtol=0.1)


def test_a_card_written_before_the_backbones_existed_loads_the_papers_nets():
    old = ModelConfig(num_classes=3, width=TINY).to_dict()
    del old["audio_backbone"], old["visual_backbone"]
    config = ModelConfig(**old)
    assert (config.audio_backbone, config.visual_backbone) == ("waveform", "resnet18")


@pytest.mark.parametrize("audio,visual", PAIRS)
def test_folding_keeps_the_outputs_and_input_gradients(audio, visual):
    torch.manual_seed(1)
    config = architecture_config("av-concat", 5, TINY, audio_backbone=audio, visual_backbone=visual)
    model = with_batch_statistics(build_model(config))
    folded = fold_batch_norm(copy.deepcopy(model))
    left = [name for name, m in folded.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert left == (["audio_net.norm"] if audio == "logmel" else [])  # the per-band norm follows no convolution
    waveform, frames = _inputs()
    results = []
    for network in (model, folded):
        w, f = waveform.clone().requires_grad_(True), frames.clone().requires_grad_(True)
        logits = network(w, f).logits
        logits.logsumexp(dim=1).sum().backward()
        results.append((logits.detach(), w.grad, f.grad))
    for original, fused in zip(*results):
        torch.testing.assert_close(fused, original, atol=1e-4, rtol=1e-3)


# --- recipes and the registry -----------------------------------------------------------------


NEW_ENTRIES = ("audio-only-logmel", "visual-only-vgg", "av-concat-vgg", "av-sum-vgg", "av-concat-logmel",
               "av-sum-logmel", "av-concat-vgg-logmel", "av-sum-vgg-logmel")


def test_the_backbone_recipes_cover_two_by_two_backbones_and_both_fusions():
    """The paper's grid: every pair of visual and audio backbone with concat and with sum, each
    entry starting from the unimodal nets of its own backbones."""
    from avdemo.training.build_zoo import recipes

    configs = recipes()
    assert {name for name, c in configs.items() if c.role == "backbone"} == set(NEW_ENTRIES)
    order = list(configs)
    grid = {(c.audio_backbone, c.visual_backbone, c.architecture) for c in configs.values()
            if c.architecture in ("av-concat", "av-sum") and c.role in ("fusion", "backbone")}
    assert grid == {(a, v, f"av-{f}") for a, v in PAIRS for f in ("concat", "sum")}
    for name in NEW_ENTRIES:
        config = configs[name]
        assert config.role == "backbone" and config.role in ROLES
        for reference, field in ((config.init_audio, "audio_backbone"), (config.init_visual, "visual_backbone")):
            if reference:  # an AV entry starts from the unimodal model of its own backbone, trained before it
                assert getattr(configs[reference], field) == getattr(config, field)
                assert order.index(reference) < order.index(name)
        # the recipe builds the network it names
        model = build_model(architecture_config(config.architecture, 3, TINY, audio_backbone=config.audio_backbone,
                                                visual_backbone=config.visual_backbone))
        if hasattr(model, "audio_net"):
            assert isinstance(model.audio_net, AUDIO_BACKBONES[config.audio_backbone])
        if hasattr(model, "visual_net"):
            assert isinstance(model.visual_net, VISUAL_BACKBONES[config.visual_backbone])


def test_initialising_from_another_backbone_is_refused(tmp_path):
    from safetensors.torch import save_file

    from avdemo.training.train import TrainConfig, build_for_training

    resnet = build_model(architecture_config("visual-only", 3, TINY))
    save_file({k: v.contiguous() for k, v in resnet.state_dict().items()}, str(tmp_path / "resnet.safetensors"))
    vgg = build_model(architecture_config("visual-only", 3, TINY, visual_backbone="vgg"))
    save_file({k: v.contiguous() for k, v in vgg.state_dict().items()}, str(tmp_path / "vgg.safetensors"))
    recipe = TrainConfig(name="t", architecture="av-sum", width=TINY, visual_backbone="vgg")
    model = build_for_training(dataclasses.replace(recipe, init_visual=str(tmp_path / "vgg.safetensors")), 3)
    torch.testing.assert_close(model.visual_net.state_dict(), {k.removeprefix("visual_net."): v
                                                                for k, v in vgg.state_dict().items()
                                                                if k.startswith("visual_net.")})
    with pytest.raises(ValueError, match="does not fit"):
        build_for_training(dataclasses.replace(recipe, init_visual=str(tmp_path / "resnet.safetensors")), 3)


@pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")
def test_backbone_entries_stay_out_of_the_papers_tables_and_the_map_attack_plan():
    from avdemo.evaluation import map_attacks
    from avdemo.evaluation.tables import unimodal_models

    assert unimodal_models() == {"✓A": "audio-only", "✓V": "visual-only"}
    assert not set(NEW_ENTRIES) & set(models_with_role("unimodal", "fusion", "localization", "defense"))
    assert not set(NEW_ENTRIES) & set(map_attacks.default_plan())
