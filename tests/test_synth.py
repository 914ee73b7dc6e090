"""AV-Synth on a tiny bank built inside the tests (no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avdemo import NUM_SAMPLES, SAMPLE_RATE
from avdemo.data.bank import load_bank
from avdemo.data.shards import ShardDataset, write_split
from avdemo.data.synth import (
    SPLIT_CODES,
    SynthConfig,
    SynthDataset,
    generate_clip,
    plan_clip,
    render_clip,
    render_sound,
    with_changes,
)

from bank_factory import make_tiny_bank


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory):
    return make_tiny_bank(tmp_path_factory.mktemp("bank"))


@pytest.fixture(scope="module")
def bank(bank_dir):
    return load_bank(bank_dir, manifest_path=None)


def test_bank_holds_cropped_sprites_and_resampled_sounds(bank_dir, bank):
    index = json.loads((bank_dir / "bank.json").read_text())
    assert index["sample_rate"] == SAMPLE_RATE and index["size_bytes"] < 2**20
    violin = {s.id: s.rgba for s in bank.sprites["train"]["violin"]}
    # The ellipse (semi-axes 30 and 20, drawn inclusive) on a 90 x 60 canvas is cropped to its alpha.
    assert violin["violin-a"].shape == (41, 61, 4)
    # The SVG's 100 x 40 rectangle, rendered, cropped and scaled to a longer side of 256.
    assert violin["violin-c"].shape == (103, 256, 4) and violin["violin-c"][..., 3].min() > 0
    recording = bank.recordings["train"]["violin"][0].samples
    assert abs(len(recording) / SAMPLE_RATE - 1.0) < 0.05  # silence trimmed, 22.05 kHz -> 11.025 kHz
    spectrum = np.abs(np.fft.rfft(recording))
    assert np.argmax(spectrum) * SAMPLE_RATE / len(recording) == pytest.approx(660, abs=5)


def test_load_bank_refuses_a_bank_from_another_manifest(bank_dir, tmp_path):
    other = tmp_path / "manifest.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match="another manifest"):
        load_bank(bank_dir, manifest_path=other)
    with pytest.raises(FileNotFoundError, match="python -m avdemo.data bank"):
        load_bank(tmp_path / "nowhere", manifest_path=None)


def test_generation_is_deterministic_in_split_index_and_seed(bank):
    first = generate_clip(bank, "train", 5, seed=3)
    again = generate_clip(bank, "train", 5, seed=3)
    assert np.array_equal(first.frames, again.frames) and np.array_equal(first.waveform, again.waveform)
    assert first.extra == again.extra
    for other in (generate_clip(bank, "train", 9, seed=3), generate_clip(bank, "train", 5, seed=4),
                  generate_clip(bank, "val", 5, seed=3)):
        assert not np.array_equal(first.waveform, other.waveform)


@pytest.mark.parametrize("frames", [1, 4])
def test_clip_format_and_ranges(bank, frames):
    config = SynthConfig(frames=frames, size=96)
    for index in range(8):
        clip = generate_clip(bank, "train", index, config=config)
        assert clip.frames.shape == (frames, 96, 96, 3) and clip.frames.dtype == np.uint8
        assert clip.waveform.shape == (NUM_SAMPLES,) and clip.waveform.dtype == np.float32
        assert -1 <= clip.waveform.min() and clip.waveform.max() <= 1 and np.abs(clip.waveform).max() > 0.1
        assert clip.label == index % 4
        assert clip.box.shape == (frames, 4) and clip.mask.shape == (frames, 96, 96)
        assert clip.distractor_box.shape == (frames, 2, 4) and clip.distractor_label.shape == (2,)
        present = clip.distractor_label >= 0
        assert (clip.distractor_label[present] != clip.label).all()
        assert np.isnan(clip.distractor_box[:, ~present]).all() and not np.isnan(clip.distractor_box[:, present]).any()


def test_boxes_are_the_tight_bounds_of_the_sprite_alpha(bank):
    for index in range(12):
        clip = generate_clip(bank, "train", index, config=SynthConfig(frames=2, size=128))
        for step in range(2):
            ys, xs = np.nonzero(clip.mask[step])
            assert len(ys) > 50
            assert clip.box[step].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            # The sounding object's pixels carry its colour (it is drawn on top of everything).
            colour = clip.frames[step][clip.mask[step]].mean(axis=0)
            expected = {"violin": (200, 40, 40), "cello": (40, 200, 40), "dog": (40, 40, 200), "duck": (200, 200, 40)}
            assert np.abs(colour - expected[bank.classes[clip.label]]).max() < 60


def test_sounding_object_moves_with_loudness(bank):
    plan = plan_clip(bank, "train", 2, config=SynthConfig(frames=8))
    clip = render_clip(bank, plan, SynthConfig(frames=8))
    _, source = render_sound(plan, NUM_SAMPLES)
    areas = clip.mask.reshape(8, -1).sum(axis=1)
    times = (np.arange(8) + 0.5) * NUM_SAMPLES / 8
    loud = [np.sqrt(np.mean(source[int(t) - 550 : int(t) + 550] ** 2)) for t in times]
    assert np.corrcoef(areas, loud)[0, 1] > 0.8


def test_noise_bed_sits_at_the_planned_snr(bank):
    plan = with_changes(plan_clip(bank, "val", 1), snr_db=6.0, peak=0.3)  # val: no augmentation on top
    mixture, source = render_sound(plan, NUM_SAMPLES)
    measured = 20 * np.log10(np.linalg.norm(source) / np.linalg.norm(mixture - source))
    assert measured == pytest.approx(6.0, abs=0.1)


def test_heldout_split_uses_only_heldout_material_and_training_never_does(bank_dir, bank):
    index = json.loads((bank_dir / "bank.json").read_text())
    heldout = {item["id"] for kind in ("sprites", "recordings", "backgrounds", "noise") for item in index[kind]
               if item["role"] == "heldout"}
    used = {split: set() for split in SPLIT_CODES}
    for split in SPLIT_CODES:
        for number in range(40):
            meta = generate_clip(bank, split, number, config=SynthConfig(size=64)).extra
            used[split] |= {meta["sprite"], meta["sound"], meta["background"], meta["noise"]}
            used[split] |= {d["sprite"] for d in meta["distractors"]}
    for split in ("train", "val", "test"):
        assert not used[split] & heldout
        assert "notes:sine-b" not in used[split]
    assert used["test-heldout"] - {"notes:sine-b"} <= heldout
    assert "notes:sine-b" in used["test-heldout"] and "notes:sine-a" in used["train"]


def test_look_alike_distractors_are_common(bank):
    pairs = 0
    for number in range(0, 200, 4):  # violin clips (label 0)
        meta = generate_clip(bank, "train", number, config=SynthConfig(size=64)).extra
        pairs += any(d["class"] == "cello" for d in meta["distractors"])
    assert pairs >= 20


def test_dataset_in_workers_matches_direct_generation(bank_dir, bank):
    dataset = SynthDataset(bank_dir, "val", per_class=2, seed=7, config=SynthConfig(size=64))
    dataset._bank = load_bank(bank_dir, manifest_path=None)
    assert len(dataset) == 8
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    batches = list(loader)
    assert batches[0]["waveform"].shape == (4, NUM_SAMPLES) and batches[0]["frames"].shape == (4, 1, 3, 64, 64)
    direct = generate_clip(bank, "val", 5, seed=7, config=SynthConfig(size=64))
    torch.testing.assert_close(batches[1]["waveform"][1], torch.from_numpy(direct.waveform))
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0]["waveform"], batches[0]["waveform"][0])


def test_shards_roundtrip_keeps_ground_truth(bank, tmp_path):
    config = SynthConfig(frames=2, size=64)
    records = [generate_clip(bank, "test", i, config=config) for i in range(5)]
    write_split(tmp_path / "test", records, bank.classes, source={"generator": 1})
    dataset = ShardDataset(tmp_path / "test")
    assert len(dataset) == 5 and dataset.classes == bank.classes
    for record, sample in zip(records, dataset):
        assert sample["label"] == record.label
        assert torch.equal(sample["mask"], torch.from_numpy(record.mask))
        assert (sample["waveform"] - torch.from_numpy(record.waveform)).abs().max() <= 1 / 32767
        assert torch.equal(sample["frames"], torch.from_numpy(record.frames).permute(0, 3, 1, 2).float() / 255)
        torch.testing.assert_close(sample["box"], torch.from_numpy(record.box))
        torch.testing.assert_close(sample["distractor_box"], torch.from_numpy(record.distractor_box), equal_nan=True)


def test_only_training_clips_are_augmented_toward_real_recordings(bank):
    plans = {split: plan_clip(bank, split, 3) for split in ("train", "val", "test", "test-heldout")}
    assert [split for split, plan in plans.items() if plan.augment_audio] == ["train"]
    plain = with_changes(plans["train"], augment_audio=False)
    augmented, source = render_sound(plans["train"], NUM_SAMPLES)
    unaugmented, same_source = render_sound(plain, NUM_SAMPLES)
    assert not np.allclose(augmented, unaugmented)
    assert np.abs(augmented).max() <= 1.0
