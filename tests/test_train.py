"""Training: one step per model type and defense on tiny shards, resume, init, DDP on gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import default_collate

from avdemo.data.shards import ClipRecord, ShardDataset, write_split
from avdemo.models import ARCHITECTURES
from avdemo.training.train import TrainConfig, build_for_training, train

from toy_task import NUM_CLASSES, toy_batch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_shards(tmp_path_factory):
    """The toy task as train/ and val/ shards (4 classes, 4096 samples, 32 px)."""
    root = tmp_path_factory.mktemp("toy-shards")
    for split, count, seed in (("train", 64, 1), ("val", 16, 2)):
        waveform, frames, labels = toy_batch(count, seed=seed)
        pixels = (frames.permute(0, 1, 3, 4, 2) * 255).round().to(torch.uint8).numpy()
        records = [ClipRecord(pixels[i], waveform[i].numpy(), int(labels[i])) for i in range(count)]
        write_split(root / split, records, [f"c{k}" for k in range(NUM_CLASSES)], source={"toy": True})
    return root


def _config(shards: Path, **changes) -> TrainConfig:
    settings = dict(name="tiny", architecture="av-concat", width=1 / 16, dataset="shards", shards=str(shards),
                    epochs=1, batch_size=8, lr_audio=0.01, lr_visual=0.01, lr_head=0.01, eval_batch_size=16)
    return TrainConfig(**{**settings, **changes})


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_one_training_step_per_model_type(toy_shards, tmp_path, architecture):
    config = _config(toy_shards, architecture=architecture)
    run = train(config, tmp_path / "run", "cpu", max_steps=1, log=lambda *_: None)
    state = json.loads((run / "state.json").read_text())
    assert state["run"]["epoch"] == 1 and np.isfinite(state["run"]["history"][0]["train_loss"])
    weights = load_file(str(run / "best.safetensors"))
    assert any(k.startswith("classifier.") for k in weights)
    # The step moved the weights away from the initialisation (train() seeds with config.seed, then builds).
    torch.manual_seed(config.seed)
    model = build_for_training(config, NUM_CLASSES)
    assert not torch.equal(model.state_dict()["classifier.weight"], weights["classifier.weight"])
    # best_val is the accuracy of the saved best weights on the 16 val clips, measured here on our own.
    model.load_state_dict(weights)
    model.eval()
    val = default_collate(list(ShardDataset(toy_shards / "val")))
    with torch.no_grad():
        correct = (model(val["waveform"], val["frames"]).logits.argmax(-1) == val["label"]).sum().item()
    assert state["run"]["best_val"] == state["run"]["history"][0]["val_accuracy"] == correct / 16
    assert state["run"]["best_epoch"] == 1


@pytest.mark.parametrize("defense", ["minsim", "maxsim", "pcl"])
def test_one_training_step_per_defense(toy_shards, tmp_path, defense):
    run = train(_config(toy_shards, defense=defense), tmp_path / "run", "cpu", max_steps=2, log=lambda *_: None)
    weights = load_file(str(run / "best.safetensors"))
    assert ("defense.centres" in weights) == (defense == "pcl")
    if defense == "pcl":
        assert weights["defense.centres"].shape == (NUM_CLASSES, 64)


def test_defense_term_changes_what_is_learned(toy_shards, tmp_path):
    plain = train(_config(toy_shards, epochs=2), tmp_path / "plain", "cpu", log=lambda *_: None)
    minsim = train(_config(toy_shards, epochs=2, defense="minsim", defense_weight=5.0), tmp_path / "minsim", "cpu",
                   log=lambda *_: None)
    assert not torch.equal(load_file(str(plain / "best.safetensors"))["classifier.weight"],
                           load_file(str(minsim / "best.safetensors"))["classifier.weight"])


def test_resume_continues_where_it_stopped(toy_shards, tmp_path):
    run = train(_config(toy_shards, epochs=1), tmp_path / "run", "cpu", log=lambda *_: None)
    first = json.loads((run / "state.json").read_text())
    train(_config(toy_shards, epochs=2), run, "cpu", resume=True, log=lambda *_: None)
    second = json.loads((run / "state.json").read_text())
    assert second["run"]["epoch"] == 2 and len(second["run"]["history"]) == 2
    assert second["run"]["history"][0] == first["run"]["history"][0]


def test_initialisation_copies_the_unimodal_networks(toy_shards, tmp_path):
    audio = train(_config(toy_shards, architecture="audio-only"), tmp_path / "audio", "cpu", max_steps=2, log=lambda *_: None)
    model = build_for_training(_config(toy_shards, init_audio=str(audio)), NUM_CLASSES)
    source = load_file(str(audio / "best.safetensors"))
    for key, value in model.state_dict().items():
        if key.startswith("audio_net."):
            torch.testing.assert_close(value, source[key])
    with pytest.raises(ValueError, match="has no visual_net"):
        build_for_training(_config(toy_shards, init_visual=str(audio)), NUM_CLASSES)


def test_config_files_are_strict(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\narchitecture = "av-sum"\n[optim]\nlearning_rate = 0.1\n')
    with pytest.raises(ValueError, match="unknown settings"):
        TrainConfig.load(path)
    for config in sorted((ROOT / "configs" / "zoo").glob("*.toml")):
        loaded = TrainConfig.load(config)
        assert loaded.name == config.stem and loaded.architecture in ARCHITECTURES


def test_a_recipe_extends_another_and_states_only_what_differs(tmp_path):
    (tmp_path / "base.toml").write_text('name = "base"\narchitecture = "av-concat"\n[optim]\nepochs = 6\nmilestones = [4]\n')
    (tmp_path / "child.toml").write_text('extends = "base"\nname = "child"\narchitecture = "av-sum"\n')
    child = TrainConfig.load(tmp_path / "child.toml")
    assert (child.name, child.architecture, child.epochs, child.milestones) == ("child", "av-sum", 6, (4,))


def test_data_parallel_training_on_gloo_with_two_processes(toy_shards, tmp_path):
    config = tmp_path / "ddp.toml"
    config.write_text(
        f'name = "ddp"\narchitecture = "av-gated-concat"\nwidth = 0.0625\ndataset = "shards"\nshards = "{toy_shards}"\n'
        "epochs = 1\nbatch_size = 8\nlr_audio = 0.01\nlr_visual = 0.01\nlr_head = 0.01\neval_batch_size = 16\n"
        'defense = "pcl"\n'
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "avdemo.training.train",
         "--config", str(config), "--run-dir", str(tmp_path / "run"), "--device", "cpu"],
        capture_output=True, text=True, env=environment, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert "2 process(es)" in state["hardware"]
    # 64 clips, 2 processes of batch 8: 4 steps each, every clip seen once. The throughput counts
    # both processes' clips over rank 0's epoch time, so rate * time = 64 clips (not 32, nor 128).
    epoch = state["run"]["history"][0]
    assert epoch["clips_per_second"] * epoch["seconds"] == pytest.approx(64)
