"""The lossless take-away: the exported arrays are exactly what fooled the model, the record
says how they were made, and `python -m avdemo.lab.replay` makes them again."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from avdemo.lab.analysis import cached_model, run
from avdemo.lab.export import ARRAYS, RECORD, arrays_digest, model_inputs, read_arrays, write_bundle
from avdemo.lab.replay import main as replay_main
from avdemo.lab.ui import attack_settings, example_paths, load_input, model_frames
from avdemo.zoo import entry_digest, list_models

pytestmark = pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")
EXAMPLE = str(example_paths()[3])  # cello beside a silent violin
SETTINGS = attack_settings("both", 0.01, 4, 2, 0, False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    clip, truth = load_input(EXAMPLE, frames=model_frames("av-attention"))
    analysis = run(clip, "av-attention", "none", "pgd", SETTINGS, None, truth)
    paths = write_bundle(analysis, folder, "av-attention", "none", "pgd", SETTINGS, None, {"video": EXAMPLE})
    return analysis, folder, paths


def test_the_exported_input_fools_the_model_exactly_as_on_the_page(exported):
    analysis, folder, paths = exported
    assert [path.name for path in paths] == [ARRAYS, RECORD]
    arrays = read_arrays(folder / ARRAYS)
    assert arrays["adversarial_frames"].dtype == np.float32  # not quantised to 8 bits like the mp4
    np.testing.assert_array_equal(arrays["adversarial_frames"], analysis.adversarial_frames)
    np.testing.assert_array_equal(arrays["adversarial_waveform"], analysis.adversarial_waveform)
    with torch.no_grad():
        output = cached_model("av-attention")(*model_inputs(arrays))
    probabilities = output.logits[0].softmax(-1).numpy()
    np.testing.assert_allclose(probabilities, analysis.attacked_probabilities, atol=1e-5)
    delta = arrays["adversarial_frames"] - arrays["clean_frames"] / 255
    assert 0 < np.abs(delta).max() <= 4 / 255 + 1e-6  # the perturbation survives, within its budget


def test_the_record_says_how_the_run_was_made(exported):
    analysis, folder, _ = exported
    record = json.loads((folder / RECORD).read_text())
    assert record["entry"] == "av-attention" and record["entry_sha256"] == entry_digest("av-attention")
    assert record["settings"]["eps_audio"] == 0.01 and record["settings"]["steps"] == 2 and record["settings"]["seed"] == 0
    assert record["inputs"]["video"]["path"] == "assets/examples/" + EXAMPLE.rsplit("/", 1)[1]
    assert record["inputs"]["video"]["shipped"] and "image" not in record["inputs"]
    assert record["arrays_sha256"] == arrays_digest(read_arrays(folder / ARRAYS))
    assert record["attacked_prediction"] == analysis.classes[int(analysis.attacked_probabilities.argmax())]
    assert record["command"] == "python -m avdemo.lab.replay run.json"  # a shipped example needs no file


def test_replay_makes_the_same_adversarial_input_again(exported, tmp_path, capsys):
    _, folder, _ = exported
    replay_main([str(folder / RECORD), "--out", str(tmp_path)])
    assert "bit-identical" in capsys.readouterr().out
    assert (tmp_path / ARRAYS).is_file() and (tmp_path / RECORD).is_file()


def test_replay_of_an_upload_asks_for_the_file_and_checks_it(tmp_path):
    picture, other = tmp_path / "picture.png", tmp_path / "other.png"
    cv2.imwrite(str(picture), np.full((64, 64, 3), 120, np.uint8))
    cv2.imwrite(str(other), np.full((64, 64, 3), 30, np.uint8))
    clip, _ = load_input(None, str(picture), None, model_frames("av-concat"))
    analysis = run(clip, "av-concat", "none", "fgsm", attack_settings("visual", 0, 8, 1, 0, False))
    write_bundle(analysis, tmp_path / "bundle", "av-concat", "none", "fgsm", attack_settings("visual", 0, 8, 1, 0, False),
                 None, {"image": str(picture)})
    record = tmp_path / "bundle" / RECORD
    assert json.loads(record.read_text())["command"] == "python -m avdemo.lab.replay run.json --image picture.png"
    with pytest.raises(SystemExit, match="give it again with --image"):
        replay_main([str(record), "--out", str(tmp_path / "again")])
    with pytest.raises(SystemExit, match="SHA-256 differs"):
        replay_main([str(record), "--image", str(other), "--out", str(tmp_path / "again")])
