"""The transfer evaluation: its statistics, its findings' rules on hand-made outcomes, the settings it
gives the attacks, and one small real run on shipped models (crafted once, judged from the cache)."""

from __future__ import annotations

import math

import pytest
import torch

from avdemo.evaluation import transfer
from avdemo.lab.ui import example_paths, load_input, model_frames
from avdemo.zoo import list_models


def test_sign_test_and_spearman_give_known_values():
    assert transfer.sign_test(9, 1) == pytest.approx(2 * 11 / 1024)
    assert transfer.sign_test(5, 5) == 1.0 and transfer.sign_test(0, 0) == 1.0
    assert transfer.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert transfer.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_val_and_test_perturbations_are_cached_apart(tmp_path, monkeypatch):
    """Both splits number their clips from 0: a test clip must never be judged with the perturbation
    crafted for the val clip of the same number (the sweep runs on val first)."""
    from types import SimpleNamespace

    monkeypatch.setenv("AVDEMO_CACHE", str(tmp_path))
    task = transfer.Task("av-concat", "ifgsm", "visible", "both", (("step_fraction", 0.5),))
    val, test = (SimpleNamespace(root=tmp_path / "T4-S224-seed0" / split) for split in ("val", "test"))
    assert transfer._delta_path(task, val) != transfer._delta_path(task, test)
    assert transfer._delta_path(task, test) == transfer._delta_path(task, SimpleNamespace(root=test.root))


def test_the_matrix_counts_each_attack_at_its_chosen_settings_only(monkeypatch):
    monkeypatch.setattr(transfer, "outcomes", lambda report: [
        {**_row("ifgsm", 5), "options": "step_fraction=0.5"}, {**_row("ifgsm", 9), "options": "step_fraction=0.25"},
        {**_row("mig", 3), "options": "path_points=4"}])
    report = {"sweep": {"chosen": {"ifgsm": {"step_fraction": 0.5}}}}
    rows = transfer.matrix_rows(report)
    assert [(r["attack"], r["successes"]) for r in rows] == [("ifgsm", 5), ("mig", 3)]  # mig: equal work, unswept


def test_step_fraction_scales_each_budget_per_channel():
    task = transfer.Task("av-concat", "mim", "caption", "both", (("step_fraction", 0.25),))
    settings = task.settings(seed=3)
    assert settings.step_audio == pytest.approx(settings.eps_audio / 4)
    assert settings.step_visual == pytest.approx(tuple(e / 4 for e in settings.eps_visual))
    assert settings.steps == transfer.STEPS and settings.seed == 3


def _row(attack, successes, trials=20, cross=True, cosine=0.3, surrogate="s", victim="v", budget="visible",
         modality="both"):
    eligible = [str(i) for i in range(trials)]
    return {"surrogate": surrogate, "attack": attack, "options": "", "budget": budget, "modality": modality,
            "victim": victim, "cross_architecture": cross, "trials": trials, "successes": successes,
            "succeeded_clips": eligible[:successes], "eligible_clips": eligible, "cosine": cosine}


def test_transfer_exists_is_read_against_the_noise_control():
    rows = [_row("noise", 1), _row("mim", 15), _row("fgsm", 9)]
    assert transfer.transfer_exists(rows)[2] == "holds"
    assert transfer.transfer_exists([_row("noise", 3), _row("mim", 3)])[2] == "does not hold"
    assert transfer.transfer_exists([_row("noise", 1), _row("mim", 4)])[2].startswith("inconclusive")
    assert transfer.transfer_exists([_row("noise", 1, cross=False), _row("mim", 15, cross=False)])[2] == "not measured"


def test_proposed_attacks_are_compared_unit_by_unit_with_the_strongest_baseline():
    baselines = [_row(a, 5) for a in transfer.BASELINES]
    better = baselines + [_row(a, 18) for a in transfer.PROPOSED]
    assert transfer.proposed_transfer_better(better)[2] == "holds"
    mixed = baselines + [_row("tia", 18), _row("mma", 5), _row("tma", 6)]
    assert transfer.proposed_transfer_better(mixed)[2] == "partly"
    worse = [_row(a, 18) for a in transfer.BASELINES] + [_row(a, 2) for a in transfer.PROPOSED]
    assert transfer.proposed_transfer_better(worse)[2] == "does not hold"


def test_cosine_finding_needs_a_significant_negative_rank_correlation():
    attacks = [*transfer.BASELINES, *transfer.PROPOSED]
    falling = [_row(a, 2 + 2 * i, cosine=0.9 - 0.1 * i) for i, a in enumerate(attacks)]
    assert transfer.cosine_goes_with_transfer(falling)[2] == "holds"
    rising = [_row(a, 2 + 2 * i, cosine=0.1 + 0.1 * i) for i, a in enumerate(attacks)]
    assert transfer.cosine_goes_with_transfer(rising)[2] == "does not hold"
    assert transfer.cosine_goes_with_transfer(falling[:3])[2] == "not measured"


@pytest.mark.skipif(not {"av-concat", "av-sum"} <= set(list_models()), reason="needs the shipped zoo")
def test_a_small_real_run_crafts_once_and_judges_each_victim(tmp_path, monkeypatch):
    monkeypatch.setenv("AVDEMO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(transfer, "STEPS", 2)
    samples = []
    for stem, label in (("duck-beside-rooster", "duck"), ("violin-beside-cello", "violin")):
        video = next(str(p) for p in example_paths() if p.stem == stem)
        clip, _ = load_input(video, frames=model_frames("av-concat"))
        waveform, frames = clip.model_inputs()
        samples.append({"waveform": waveform[0], "frames": frames[0],
                        "label": transfer.describe("av-concat")["classes"].index(label)})
    report, saves = {}, []
    tasks = [transfer.Task("av-concat", attack, "visible", "both") for attack in ("noise", "ifgsm")]
    transfer.run(tasks, ["av-concat", "av-sum"], samples, [0, 1], report, saves.append)
    assert saves and set(report["clean"]) == {f"{v}|{transfer.entry_digest(v)[:12]}" for v in ("av-concat", "av-sum")}
    rows = transfer.outcomes(report)
    assert {(r["attack"], r["victim"]) for r in rows} == {(a, v) for a in ("noise", "ifgsm") for v in ("av-concat", "av-sum")}
    white = next(r for r in rows if r["attack"] == "ifgsm" and r["victim"] == "av-concat")
    assert white["trials"] == 2 and white["successes"] == 2  # white-box I-FGSM at the visible budget fools both clips
    assert not white["cross_architecture"] and 0 <= white["cosine"] <= 1
    # Judged again from the cached float16 perturbations, the surrogate's verdicts are those of the attack itself.
    cached = transfer.craft_task(tasks[1], samples, [0, 1], "cpu", 2)
    assert set(cached) == {0, 1} and cached[0]["frames"].shape == tuple(samples[0]["frames"].shape)
    with torch.no_grad():
        assert transfer.judge("av-concat", samples, [0, 1], cached, "cpu", 2) == {0: False, 1: False}
    # A new victim is judged without crafting again: nothing is crafted, the records gain its verdicts.
    monkeypatch.setattr(transfer, "create_attack", lambda *a, **k: pytest.fail("crafted again"))
    transfer.run(tasks, ["av-concat", "av-sum", "av-film"], samples, [0, 1], report, saves.append)
    film_clean = report["clean"][f"av-film|{transfer.entry_digest('av-film')[:12]}"]
    assert transfer.pooled(transfer.outcomes(report), attack="ifgsm", victim="av-film")[1] == sum(film_clean.values())


def test_the_sweep_goes_stage_by_stage_from_the_best_so_far(monkeypatch):
    """With a fake measurement (success grows with the weights and with copies), each stage starts
    from the best of the one before, and the choice is the best setting tried."""
    def fake_run(tasks, victims, dataset, clips, data, save, *args, **kwargs):
        for task in tasks:
            data.setdefault("tasks", []).append(task)

    def fake_outcomes(data, clips=None):
        rows = []
        for task in data.get("tasks", []):
            options = dict(task.options)
            weight = options.get("lambda_temporal")
            score = min(20, int((2 * math.log10(weight) if weight else 0) + options.get("copies", 0)
                                + 5 * options.get("step_fraction", 0) + (3 if options.get("synchronous") is False else 0)))
            rows.append({**_row(task.attack, score, surrogate=task.surrogate), "options": task.options_key})
        return rows

    monkeypatch.setattr(transfer, "run", fake_run)
    monkeypatch.setattr(transfer, "outcomes", fake_outcomes)
    report = transfer.sweep({}, "s", ["v"], None, [0], lambda r: None)
    chosen = report["sweep"]["chosen"]
    assert chosen["tia"] == {"copies": 8, "lambda_temporal": 1000.0, "synchronous": False}  # beyond the grid's edge
    assert chosen["ifgsm"] == {"step_fraction": 0.5}
    tried = [t["options"] for t in report["sweep"]["trials"] if t["attack"] == "tia"]
    assert len(tried) == 10 and dict(copies=2, lambda_temporal=1000.0, synchronous=False) in tried


def test_an_ensemble_is_compared_with_its_members_on_the_same_clips():
    ensemble = {**_row("mim", 2, trials=4, surrogate="ensemble:a+b", victim="v"), "succeeded_clips": ["0", "3"]}
    alone = {**_row("mim", 1, trials=6, surrogate="a", victim="v"), "succeeded_clips": ["3"]}
    unrelated = _row("mim", 6, trials=6, surrogate="c", victim="v")
    lines = transfer._ensemble_lines([ensemble, alone, unrelated])
    row = next(line for line in lines if line.startswith("| mim"))
    assert "2/4 against 1/4" in row and "a alone" in " ".join(lines) and "c alone" not in " ".join(lines)
