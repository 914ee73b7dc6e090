"""The real asset bank: Debian packages fetched (or reused from the cache), the checked-in
manifest followed, a few clips of each split generated. Several minutes on a fresh machine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avdemo import NUM_SAMPLES
from avdemo.data.bank import BANK_LIMIT_BYTES, MANIFEST, build_bank, load_bank
from avdemo.data.synth import SPLIT_CODES, SynthConfig, generate_clip

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_bank(tmp_path_factory):
    out = build_bank(MANIFEST, tmp_path_factory.mktemp("real") / "bank", log=lambda *_: None)
    return out, load_bank(out)


def test_real_bank_follows_the_manifest_within_budget(real_bank):
    root, bank = real_bank
    manifest = json.loads(MANIFEST.read_text())
    index = json.loads((root / "bank.json").read_text())
    assert 0 < index["size_bytes"] <= BANK_LIMIT_BYTES
    assert bank.classes == list(manifest["classes"])
    for label, spec in manifest["classes"].items():
        assert sum(len(bank.sprites[r][label]) for r in ("train", "heldout")) == len(spec["sprites"])
        assert sum(len(bank.recordings[r][label]) for r in ("train", "heldout")) == len(spec["recordings"])
        if spec.get("gm_program") is not None:  # a soundfont with a classes list renders only those
            fonts = [f for f in manifest["soundfonts"] if label in f.get("classes", [label])]
            for role in ("train", "heldout"):
                assert [n.soundfont for n in bank.notes[role][label]] == [f["id"] for f in fonts if f["role"] == role]
            assert bank.notes["train"][label] and bank.notes["heldout"][label]
        if len(spec["sprites"]) > 1:
            assert bank.sprites["heldout"][label] and bank.sprites["train"][label], label
    kinds = {item["kind"] for item in index["sprites"]}
    assert kinds == {"png", "webp", "svg", "iconify", "emoji", "jpg-white"}
    assert {item["package"] for item in index["recordings"]} >= {"0ad-data", "tuxpaint-stamps-default", "gcompris-qt-data"}
    for role in ("train", "heldout"):
        for sprites in bank.sprites[role].values():
            for sprite in sprites:
                assert sprite.rgba.shape[2] == 4 and (sprite.rgba[..., 3] == 0).any()


@pytest.mark.parametrize("split", list(SPLIT_CODES))
def test_real_bank_generates_every_split(real_bank, split):
    _, bank = real_bank
    for index in range(len(bank.classes)):
        clip = generate_clip(bank, split, index, config=SynthConfig(frames=2))
        assert clip.frames.shape == (2, 224, 224, 3) and clip.waveform.shape == (NUM_SAMPLES,)
        assert np.abs(clip.waveform).max() > 0.05 and clip.mask.any()
        assert clip.label == index
