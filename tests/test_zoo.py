"""The zoo registry: safetensors only, weights checked against their card, defenses restored."""

from __future__ import annotations

import json

import pytest
import torch

from avdemo.defenses import ExFMem, PrototypeConformity
from avdemo.models import ModelConfig, build_model
from avdemo.zoo import (
    CARD_FORMAT,
    ZooError,
    describe,
    list_models,
    load_defense_term,
    load_model,
    load_tensors,
    quantize_int8,
    save_tensors,
)

CONFIG = ModelConfig(num_classes=4, kind="av", fusion="concat", width=1 / 16)


def _publish(root, name, model, extra=None, defense=None, int8_weights=False):
    tensors = dict(model.state_dict())
    if defense is not None:
        tensors.update({f"defense.{k}": v for k, v in defense.state_dict().items()})
    weights = save_tensors(root / f"{name}.safetensors", tensors, int8_weights=int8_weights)
    card = {"format": CARD_FORMAT, "name": name, "description": "test", "config": CONFIG.to_dict(),
            "classes": ["a", "b", "c", "d"], "weights": weights, **(extra or {})}
    (root / f"{name}.json").write_text(json.dumps(card))
    return card


@pytest.fixture
def zoo_root(tmp_path):
    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    _publish(tmp_path, "tiny", model)
    return tmp_path, model


def test_list_describe_and_load_round_trip(zoo_root):
    root, model = zoo_root
    (root / "notes.json").write_text("{}")  # not a card: ignored
    assert list_models(root) == ["tiny"]
    assert describe("tiny", root)["classes"] == ["a", "b", "c", "d"]
    loaded = load_model("tiny", "cpu", root)
    waveform, frames = torch.rand(2, 4096) * 2 - 1, torch.rand(2, 1, 3, 64, 64)
    expected = model(waveform, frames).logits
    torch.testing.assert_close(loaded(waveform, frames).logits, expected, atol=2e-2, rtol=2e-2)  # fp16 weights
    assert not loaded.training


def test_int8_weights_are_about_half_of_fp16_and_predict_alike(tmp_path):
    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    _publish(tmp_path, "half", model)
    card = _publish(tmp_path, "int8", model, int8_weights=True)
    convolution = "visual_net.layer4.0.conv1.weight"
    assert convolution + ".int8_scale" in card["weights"]["tensors"]
    size = {name: (tmp_path / f"{name}.safetensors").stat().st_size for name in ("half", "int8")}
    assert size["int8"] < 0.65 * size["half"]
    stored = load_tensors(tmp_path / "int8.safetensors", card["weights"])
    assert stored[convolution].dtype == torch.float32 and not any(k.endswith(".int8_scale") for k in stored)
    weight = model.state_dict()[convolution]
    step = weight.flatten(1).abs().amax(1) / 127  # one quantisation step per output channel
    assert ((stored[convolution] - weight).abs().flatten(1) <= step[:, None] * 0.51 + 1e-4).all()
    waveform, frames = torch.rand(4, 4096) * 2 - 1, torch.rand(4, 1, 3, 64, 64)
    logits = model(waveform, frames).logits
    torch.testing.assert_close(load_model("int8", "cpu", tmp_path)(waveform, frames).logits, logits, atol=0.1, rtol=0.1)


def test_int8_quantisation_is_symmetric_per_output_channel():
    weight = torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.0, -2.0]])
    values, scale = quantize_int8(weight)
    assert values.dtype == torch.int8 and values.abs().max() == 127
    assert values[0, 1] == -127 and values[1, 0] == 127 and values[1, 1] == 0
    torch.testing.assert_close(scale.float(), torch.tensor([1.0, 2.0]) / 127, rtol=1e-3, atol=0)


def test_weights_that_differ_from_their_card_are_refused(zoo_root):
    root, model = zoo_root
    other = build_model(CONFIG)
    save_tensors(root / "tiny.safetensors", dict(other.state_dict()))  # same shapes, other values
    with pytest.raises(ZooError, match="SHA-256"):
        load_model("tiny", "cpu", root)


def test_card_whose_config_does_not_fit_the_weights_is_refused(zoo_root):
    root, _ = zoo_root
    card = json.loads((root / "tiny.json").read_text())
    card["config"]["fusion"] = "sum"  # the classifier then expects 32 inputs, not 64
    (root / "tiny.json").write_text(json.dumps(card))
    with pytest.raises(ZooError, match="do not fit"):
        load_model("tiny", "cpu", root)


def test_pickle_files_are_never_read(zoo_root, tmp_path):
    root, model = zoo_root
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(ZooError, match="only .safetensors"):
        load_tensors(tmp_path / "tiny.pt")
    card = json.loads((root / "tiny.json").read_text())
    card["weights"]["file"] = "tiny.pt"
    (root / "tiny.json").write_text(json.dumps(card))
    with pytest.raises(ZooError, match="only .safetensors"):
        load_model("tiny", "cpu", root)
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\x80\x04pickle-bytes-not-safetensors")
    with pytest.raises(ZooError, match="not a valid safetensors"):
        load_tensors(fake)


def test_unknown_names_say_what_exists(zoo_root):
    root, _ = zoo_root
    with pytest.raises(ZooError, match="available: tiny"):
        load_model("nope", "cpu", root)


def test_defense_term_and_exfmem_memory_load_from_the_card(tmp_path):
    model = build_model(CONFIG).eval()
    pcl = PrototypeConformity(4, 64)
    _publish(tmp_path, "pcl", model, extra={"defense": {"kind": "pcl", "weight": 0.5}}, defense=pcl)
    term = load_defense_term("pcl", "cpu", tmp_path)
    torch.testing.assert_close(term.centres, pcl.centres.detach().half().float())
    memory = save_tensors(tmp_path / "tiny.exfmem.safetensors", {"audio": torch.rand(8, 32), "visual": torch.rand(8, 32)})
    memory.update({"lam": 0.1, "mix": 0.5, "tol": 8e-4, "max_iter": 50})
    _publish(tmp_path, "tiny-exfmem", model, extra={"exfmem": memory})
    defended = load_model("tiny-exfmem", "cpu", tmp_path)
    assert isinstance(defended, ExFMem) and defended.audio_memory.max_iter == 50
    assert load_defense_term("tiny-exfmem", "cpu", tmp_path) is None
