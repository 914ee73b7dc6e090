"""`python -m avdemo.lab`: one configuration from the command line, as the page runs it."""

from __future__ import annotations

import json

import pytest

from avdemo.lab.__main__ import main
from avdemo.lab.ui import example_paths
from avdemo.zoo import list_models

pytestmark = pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")


def _video(stem: str = "duck-beside-rooster") -> str:
    return next(str(path) for path in example_paths() if path.stem == stem)


def test_an_attack_by_its_paper_name_prints_the_summary_and_writes_a_replayable_record(tmp_path, capsys):
    main([_video(), "--model", "av-concat", "--attack", "MI-FGSM", "--modality", "audio", "--eps-audio", "0.01",
          "--steps", "2", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert printed.startswith("av-concat: clean prediction duck") and "**" not in printed
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["attack"] == "mim" and record["settings"]["eps_audio"] == 0.01 and record["settings"]["eps_visual"] == 0


def test_masking_runs_without_an_attack(capsys):
    main([_video(), "--model", "av-concat", "--mask", "0.25", "--mask-mode", "audio"])
    assert "masked" in capsys.readouterr().out


@pytest.mark.parametrize("arguments,message", [
    (["--attack", "cw"], "unknown attack"),
    (["--craft-on", "no-such-model"], "no such model"),
    (["--mask", "2"], "share"),
])
def test_bad_settings_exit_with_the_reason(arguments, message):
    with pytest.raises(SystemExit, match=message):
        main([_video(), "--model", "av-concat", *arguments])
