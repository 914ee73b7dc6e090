"""The zoo build survives a kill: it resumes the model at its last finished epoch, does not
train a finished model again, and starts over when the recipe changed."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from avdemo.data.shards import ClipRecord, write_split
from avdemo.training import build_zoo
from avdemo.training.train import TrainConfig

from toy_task import NUM_CLASSES, toy_batch

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4


@pytest.fixture()
def toy_zoo(tmp_path, monkeypatch):
    for split, count, seed in (("train", 96, 1), ("val", 16, 2)):
        waveform, frames, labels = toy_batch(count, seed=seed, frames_per_clip=2)
        pixels = (frames.permute(0, 1, 3, 4, 2) * 255).round().to(torch.uint8).numpy()
        records = [ClipRecord(pixels[i], waveform[i].numpy(), int(labels[i])) for i in range(count)]
        write_split(tmp_path / "shards" / split, records, [f"c{k}" for k in range(NUM_CLASSES)], source={"toy": True})
    monkeypatch.setattr(build_zoo, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(build_zoo, "CHECKPOINTS", tmp_path / "checkpoints")
    (tmp_path / "checkpoints").mkdir()
    return tmp_path


def _recipe(root: Path, **changes) -> dict:
    return {"name": "tiny", "architecture": "av-attention", "width": 1 / 16, "dataset": "shards",
            "shards": str(root / "shards"), "frames": 2, "segment_training": True, "correspondence": True,
            "correspondence_weight": 1.0, "epochs": EPOCHS, "batch_size": 8, "eval_batch_size": 16, **changes}


def _state(root: Path) -> dict | None:
    path = root / "runs" / "tiny" / "state.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _start_build(root: Path) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        from pathlib import Path
        from avdemo.training import build_zoo
        from avdemo.training.train import TrainConfig
        build_zoo.RUNS = Path({str(root / 'runs')!r})
        build_zoo.CHECKPOINTS = Path({str(root / 'checkpoints')!r})
        build_zoo.build_model_entry(TrainConfig(**{_recipe(root)!r}), fresh=False, device="cpu", log=lambda *_: None)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script], env=env, cwd=root)


def test_a_killed_build_resumes_at_its_last_epoch_and_then_has_nothing_to_do(toy_zoo):
    process = _start_build(toy_zoo)
    deadline = time.monotonic() + 120
    while (_state(toy_zoo) or {}).get("run", {}).get("epoch", 0) < 1:
        assert process.poll() is None, "the build ended before its first epoch was saved"
        assert time.monotonic() < deadline, "no epoch finished within 2 minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = _state(toy_zoo)
    stopped_at = killed["run"]["epoch"]
    assert 1 <= stopped_at < EPOCHS, "the kill came too late to test resuming"
    assert not (toy_zoo / "checkpoints" / "tiny.json").exists()

    messages: list[str] = []
    build_zoo.build_model_entry(TrainConfig(**_recipe(toy_zoo)), fresh=False, device="cpu", log=messages.append)
    resumed = _state(toy_zoo)
    assert f"resuming tiny at epoch {stopped_at}" in messages
    assert resumed["run"]["epoch"] == EPOCHS
    assert resumed["run"]["history"][:stopped_at] == killed["run"]["history"]
    card = json.loads((toy_zoo / "checkpoints" / "tiny.json").read_text())
    assert card["training"]["epochs"] == EPOCHS and card["config"]["correspondence"] is True
    assert card["map"]["kind"] == "correspondence" and card["map"]["trained_with"]["contrastive_weight"] == 1.0

    messages.clear()
    build_zoo.build_model_entry(TrainConfig(**_recipe(toy_zoo)), fresh=False, device="cpu", log=messages.append)
    assert messages == ["tiny: finished and shipped, nothing to do"]

    card["weights"]["dtype"] = "float16"  # shipped by an older export: exported again, not retrained
    (toy_zoo / "checkpoints" / "tiny.json").write_text(json.dumps(card))
    build_zoo.build_model_entry(TrainConfig(**_recipe(toy_zoo)), fresh=False, device="cpu", log=messages.append)
    assert json.loads((toy_zoo / "checkpoints" / "tiny.json").read_text())["weights"]["dtype"] == build_zoo.INT8_WEIGHTS
    assert _state(toy_zoo)["run"]["history"] == resumed["run"]["history"]

    messages.clear()
    build_zoo.build_model_entry(TrainConfig(**_recipe(toy_zoo, epochs=1)), fresh=False, device="cpu", log=messages.append)
    assert messages[0] == "tiny: discarding the earlier run (its recipe changed)"
    assert _state(toy_zoo)["run"]["epoch"] == 1


def test_a_run_made_before_a_setting_existed_still_counts_as_the_same_recipe():
    config = TrainConfig(name="m", architecture="av-concat", milestones=(1,))
    recipe = json.loads(json.dumps(dataclasses.asdict(config)))
    older = {key: value for key, value in recipe.items() if key != "mosaic_weight"}
    assert build_zoo._with_defaults(older) == recipe
    changed = dict(older, epochs=recipe["epochs"] + 1)
    assert build_zoo._with_defaults(changed) != recipe


def test_every_fusion_and_defense_recipe_differs_from_the_base_only_in_its_fusion_or_its_defense():
    recipes = build_zoo.recipes()
    compared = {name: build_zoo.comparison_card(config) for name, config in recipes.items()}
    fusions = [name for name, config in recipes.items() if config.role == "fusion" and name != build_zoo.BASE_MODEL]
    defenses = [name for name, config in recipes.items() if config.role == "defense" and not config.init_model]
    fine_tuned = [name for name, config in recipes.items() if config.role == "defense" and config.init_model]
    assert len(fusions) == 4 and len(defenses) == 3 and len(fine_tuned) == 3
    for name in fusions:
        assert compared[name]["differs_in"] == {"architecture": name}
    for name in defenses:
        assert set(compared[name]["differs_in"]) <= {"defense", "defense_weight"}
    # The robust-training entries fine-tune the shipped base on the same data with one schedule:
    # they differ from each other only in their defense's own settings.
    procedure = {"defense", "attack_budget", "attack_modality", "attack_steps", "min_attack_steps", "eps_warmup",
                 "segment_frames", "sample_share", "copies", "copy_transforms", "lambda_temporal", "lambda_misalign",
                 "curriculum_schedule", "curriculum_low", "curriculum_high", "curriculum_cycles",
                 "mixup_reference_per_class", "mixup_convexity_points", "mixup_alpha_low", "mixup_alpha_high", "mixup_weight"}
    shared = {key: value for key, value in compared[fine_tuned[0]]["differs_in"].items() if key not in procedure}
    assert shared["init_model"] == build_zoo.BASE_MODEL and shared["select_by"] == "robust"
    for name in fine_tuned:
        assert {k: v for k, v in compared[name]["differs_in"].items() if k not in procedure} == shared
    assert compared[build_zoo.BASE_MODEL] is None and compared["av-attention"] is None


def _write_card(root: Path, name: str, **fields) -> None:
    card = {"format": build_zoo.CARD_FORMAT, "name": name, "data": {"frames": 2}, **fields}
    (root / "checkpoints" / f"{name}.json").write_text(json.dumps(card))


def test_a_card_is_measured_again_only_when_what_ships_or_the_protocol_changed(toy_zoo, monkeypatch):
    _write_card(toy_zoo, "m", weights={"sha256": "a" * 64})
    assert build_zoo.needs_measuring("m")  # never measured
    card = json.loads((toy_zoo / "checkpoints" / "m.json").read_text())
    card.update(metrics={"val_accuracy": 0.9}, measured={**build_zoo.measured_stamp("m", card), "seconds": 1.0})
    (toy_zoo / "checkpoints" / "m.json").write_text(json.dumps(card))
    assert not build_zoo.needs_measuring("m")
    per_class = build_zoo.ROBUST_PER_CLASS
    monkeypatch.setattr(build_zoo, "ROBUST_PER_CLASS", per_class + 1)
    assert build_zoo.needs_measuring("m")  # the protocol changed
    monkeypatch.setattr(build_zoo, "ROBUST_PER_CLASS", per_class)
    assert not build_zoo.needs_measuring("m")
    card["weights"]["sha256"] = "b" * 64  # new weights
    (toy_zoo / "checkpoints" / "m.json").write_text(json.dumps(card))
    assert build_zoo.needs_measuring("m")


def test_a_wrapper_is_exported_again_when_the_model_it_wraps_ships_other_weights(toy_zoo):
    entry, defense = next(iter(build_zoo.wrapper_entries().items()))
    assert build_zoo.stale_wrappers() == {}  # nothing to wrap yet
    _write_card(toy_zoo, defense.wraps, weights={"sha256": "a" * 64})
    assert entry in build_zoo.stale_wrappers()  # no card of its own yet
    memory = toy_zoo / "checkpoints" / f"{defense.wraps}.exfmem.safetensors"
    memory.write_bytes(b"memory")
    _write_card(toy_zoo, entry, weights={"sha256": "a" * 64}, exfmem={"sha256": build_zoo.sha256_of(memory)})
    assert entry not in build_zoo.stale_wrappers()
    memory.write_bytes(b"collected again")  # by another wrapper of the same model
    assert entry in build_zoo.stale_wrappers()
    _write_card(toy_zoo, entry, weights={"sha256": "a" * 64}, exfmem={"sha256": build_zoo.sha256_of(memory)})
    _write_card(toy_zoo, defense.wraps, weights={"sha256": "b" * 64})  # the wrapped model was retrained
    assert entry in build_zoo.stale_wrappers()
