"""Attacks on where the model hears the sound, measured against AV-Synth's ground truth:
`python -m avdemo.evaluation.map_attacks [--clips 20]` writes `reports/map_attacks.json`.

On test clips that show a silent object in every frame, per zoo entry with a map:

- `map-target` moves the map onto the silent object's box (its box in each frame), keeping the
  class the model predicts on the clean clip;
- `map-away` moves it off the sounding object, keeping that class;
- `class-only` changes the class, keeping the peak on the sounding object;
- `pgd` (the class attack of every table) is measured beside them: what a class attack does
  to the map as a side effect.

A frame succeeds as `avdemo.measures.localization.map_attack_success` says; a clip succeeds
when more than half its frames do and, for the two map attacks, the class is kept. Rates come
with 95 % Wilson intervals over clips, and beside each the same criterion on the clean clip
(what an attack gets for free). A defended entry is attacked with every objective its defense
lists; a clip counts as the objective that did best on it.

Budgets (10 steps of eps / 8, seeded random start): audio at a signal-to-noise ratio (each
clip's L-inf budget is its RMS level x 10^(-SNR/20), so every perturbation the attack may find
is at least SNR dB below the clip), audio and pixel budgets in input units, and the named
"paper" and "visible" budgets. Every entry is measured at the core conditions; the app's
localization model at all of them.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..attacks import AttackSettings, map_attack_names, named_budget
from ..attacks.settings import Budget
from ..defenses import craft, objectives_for
from ..measures.localization import localization_maps, map_attack_success, pointing_game, upsample
from ..measures.perceptibility import snr_db
from ..paths import REPORTS
from ..zoo import cached_model, describe, entry_digest, list_models
from .intervals import most_verdict, wilson_interval

REPORT = REPORTS / "map_attacks.json"
MAP_ATTACKS = map_attack_names()
ATTACKS = (*MAP_ATTACKS, "pgd")
STEPS = 10


@dataclass(frozen=True)
class Condition:
    """Who is attacked with what budget: audio as an amplitude or as a signal-to-noise ratio in dB."""

    name: str
    modality: str
    eps_audio: float = 0.0
    snr_db: float | None = None
    eps_visual: Budget = 0.0

    def settings(self, waveform: np.ndarray, seed: int, **changes) -> AttackSettings:
        """Settings for one clip `(L,)`: an SNR becomes that clip's L-inf budget."""
        eps_audio = self.eps_audio
        if self.snr_db is not None:
            eps_audio = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) * 10 ** (-self.snr_db / 20)
        return AttackSettings(eps_audio=eps_audio, eps_visual=self.eps_visual, steps=STEPS, random_start=True,
                              seed=seed, **changes)


VISIBLE, PAPER = named_budget("visible"), named_budget("paper")
CONDITIONS = {condition.name: condition for condition in (
    Condition("audio SNR 40 dB", "audio", snr_db=40.0),
    Condition("audio SNR 30 dB", "audio", snr_db=30.0),
    Condition("audio 0.003", "audio", eps_audio=0.003),
    Condition("audio 0.01 (visible)", "audio", eps_audio=VISIBLE.audio),
    Condition("visual 1/255", "visual", eps_visual=1 / 255),
    Condition("visual 2/255", "visual", eps_visual=2 / 255),
    Condition("visual 4/255 (visible)", "visual", eps_visual=VISIBLE.visual),
    Condition("both paper", "both", eps_audio=PAPER.audio, eps_visual=PAPER.visual),
    Condition("both visible", "both", eps_audio=VISIBLE.audio, eps_visual=VISIBLE.visual),
)}
HEADLINE = "audio SNR 30 dB"
CORE = (HEADLINE, "visual 4/255 (visible)", "both visible")
DEFENDED = (HEADLINE, "both visible")  # entries attacked with several objectives: the map attacks only


def default_plan() -> dict[str, dict[str, tuple[str, ...]]]:
    """entry -> attack -> conditions: the app's localization model at every condition; each other
    entry with a map at the core ones; entries whose defense lists several objectives (each
    costs a full attack) with the two map attacks at the headline and the visible budget."""
    plan = {}
    for name in list_models():
        card = describe(name)
        if not card.get("map") or name.endswith("-fista"):  # FISTA solves the same memory problem as ISTA
            continue
        if card.get("role") == "backbone":  # other backbones' untrained feature-cosine maps: for transfer, not maps
            continue
        if name == "av-attention":
            plan[name] = {**{attack: tuple(CONDITIONS) for attack in MAP_ATTACKS}, "pgd": CORE}
        elif len(objectives_for(name)) > 1:
            plan[name] = {attack: DEFENDED for attack in ("map-target", "map-away")}
        else:
            plan[name] = {attack: CORE for attack in ATTACKS}
    return plan


def distractor_clips(dataset, count: int) -> list[int]:
    """The first `count` clips of a split whose silent object is visible in every frame."""
    chosen = []
    for index in range(len(dataset)):
        boxes = dataset[index]["distractor_box"]
        if boxes.shape[1] and not torch.isnan(boxes[:, 0]).any():
            chosen.append(index)
            if len(chosen) == count:
                break
    return chosen


def measure_clip(entry: str, attack: str, condition: Condition, sample: dict, seed: int, device: str = "cpu") -> dict:
    """One clip under one attack and condition: clean and attacked class, and per frame whether
    the peak lies in the sounding object's box and in the silent object's (the target's). A
    defended entry counts the objective that did best on this clip."""
    size = sample["frames"].shape[-1]
    waveform, frames = sample["waveform"][None].to(device), sample["frames"][None].to(device)
    box, target = sample["box"].numpy(), sample["distractor_box"][:, 0].numpy()
    with torch.no_grad():
        clean = cached_model(entry, device)(waveform, frames)
        clean_maps = upsample(localization_maps(clean), size)[0].cpu().numpy()
    clean_pred = int(clean.logits.argmax(-1))
    region = tuple(tuple(float(v) for v in frame_box / size) for frame_box in target)
    label = int(sample["label"])
    settings = condition.settings(sample["waveform"].numpy(), seed, **({"target_region": region} if attack == "map-target" else {}))
    # the map attacks keep the class the model hears on the clean clip; class attacks fight the true label
    labels = torch.tensor([clean_pred if attack in ("map-target", "map-away") else label], device=device)
    best = None
    for objective in objectives_for(entry):
        result, output = craft(objective, entry, attack, settings, waveform, frames, labels, device)
        with torch.no_grad():
            maps = upsample(localization_maps(output), size)[0].cpu().numpy()
        pred = int(output.logits.argmax(-1))
        if attack == "pgd":
            won = int(pred != label)
        else:  # frames that did what the attack is for, none where the class did not do as it should
            class_right = (pred == clean_pred) == (attack != "class-only")
            won = int(map_attack_success(attack, maps, target if attack == "map-target" else box, True).sum()) * class_right
        if best is None or won > best[0]:
            best = (won, objective.name, pred, maps, result.delta_waveform)
    _, objective, pred, maps, delta = best
    return {"label": label, "clean_pred": clean_pred, "pred": pred, "objective": objective,
            "in_box": pointing_game(maps, box).tolist(), "in_target": pointing_game(maps, target).tolist(),
            "clean_in_box": pointing_game(clean_maps, box).tolist(),
            "clean_in_target": pointing_game(clean_maps, target).tolist(),
            "eps_audio": settings.eps_audio if condition.modality != "visual" else 0.0,
            "snr_db": round(snr_db(sample["waveform"].numpy(), delta[0].cpu().numpy()), 2)
            if condition.modality != "visual" else None}


def clip_succeeded(attack: str, record: dict, clean: bool = False) -> bool:
    """Did the attack do what it is for on this clip (on the clean clip: did it hold already)?
    More than half the frames meet the attack's criterion, with the class kept (map-target,
    map-away) or changed (class-only; pgd: changed away from the true label)."""
    prefix = "clean_" if clean else ""
    pred = record["clean_pred"] if clean else record["pred"]
    frames = len(record["in_box"])
    if attack == "map-target":
        return sum(record[prefix + "in_target"]) > frames / 2 and pred == record["clean_pred"]
    if attack == "map-away":
        return frames - sum(record[prefix + "in_box"]) > frames / 2 and pred == record["clean_pred"]
    if attack == "class-only":
        return sum(record[prefix + "in_box"]) > frames / 2 and pred != record["clean_pred"]
    if attack == "pgd":
        return pred != record["label"]
    raise ValueError(f"unknown attack {attack!r}")


def summarise(attack: str, records: list[dict]) -> dict:
    """Clip success with its Wilson interval, the clean baseline of the same criterion, and what
    moved: class kept or changed, peak on the sounding / the silent object, per frame."""
    n = len(records)
    won = sum(clip_succeeded(attack, r) for r in records)
    frames = sum(len(r["in_box"]) for r in records)
    low, high = wilson_interval(won, n)
    snrs = [r["snr_db"] for r in records if r["snr_db"] is not None]
    return {"clips": n, "succeeded": won, "rate": won / max(n, 1), "interval": [round(low, 4), round(high, 4)],
            "verdict_most": most_verdict(won, n),
            "clean_rate": sum(clip_succeeded(attack, r, clean=True) for r in records) / max(n, 1),
            "class_kept": sum(r["pred"] == r["clean_pred"] for r in records) / max(n, 1),
            "frames": frames,
            "peak_on_source": sum(map(sum, (r["in_box"] for r in records))) / max(frames, 1),
            "peak_on_silent": sum(map(sum, (r["in_target"] for r in records))) / max(frames, 1),
            "clean_peak_on_source": sum(map(sum, (r["clean_in_box"] for r in records))) / max(frames, 1),
            "median_snr_db": float(np.median(snrs)) if snrs else None}


def run(plan: dict[str, dict[str, tuple[str, ...]]], clips: int, report: dict, save, device: str = "cpu",
        log=print) -> dict:
    """Measure every (entry, attack, condition) of `plan` on `clips` clips, skipping records the
    report already holds for the same weights; `save(report)` after each."""
    from ..training.build_zoo import data_splits

    records = report.setdefault("records", {})
    for entry, attacks in plan.items():
        dataset = data_splits(entry)["test"]
        chosen = distractor_clips(dataset, clips)
        digest = entry_digest(entry)[:16]
        for attack, conditions in attacks.items():
            for name in conditions:
                key = f"{entry}|{digest}|{attack}|{name}"
                done = records.setdefault(key, {})
                todo = [index for index in chosen if str(index) not in done]
                if not todo:
                    continue
                started = time.perf_counter()
                for index in todo:
                    done[str(index)] = measure_clip(entry, attack, CONDITIONS[name], dataset[index], index, device)
                log(f"{entry} {attack} {name}: {len(todo)} clips in {time.perf_counter() - started:.0f} s")
                save(report)
    report["results"] = results(report, clips)
    report["stamp"] = {"clips": clips, "split": "test", "steps": STEPS, "time": time.strftime("%Y-%m-%d %H:%M"),
                       "device": device, "checkpoints": {entry: entry_digest(entry) for entry in plan}}
    save(report)
    return report


def results(report: dict, clips: int) -> list[dict]:
    """One summary row per (entry, attack, condition) the report holds records of, measured on
    the weights that ship now, over its first `clips` clips."""
    current = {entry: entry_digest(entry)[:16] for entry in list_models()}
    rows = []
    for key, stored in report.get("records", {}).items():
        entry, digest, attack, name = key.split("|")
        if current.get(entry) == digest and stored:
            records = [stored[index] for index in sorted(stored, key=int)[:clips]]
            rows.append({"model": entry, "attack": attack, "condition": name, "modality": CONDITIONS[name].modality,
                         **summarise(attack, records)})
    return rows


APP_MODEL = "av-attention"  # the app's localization model: the findings' rules are about it


def _row(report: dict, model: str, attack: str, condition: str) -> dict | None:
    return next((r for r in report.get("results", []) if (r["model"], r["attack"], r["condition"]) == (model, attack, condition)),
                None)


def _rate(row: dict | None) -> str:
    if row is None:
        return "–"
    low, high = row["interval"]
    return f"{row['succeeded']}/{row['clips']} ({row['rate']:.0%}, {low:.0%}-{high:.0%})"


def audio_moves_the_map(report: dict) -> tuple[str, str, str]:
    """The finding "an audio-only perturbation at SNR >= 30 dB moves the map onto a silent object
    in most clips", on the app's localization model."""
    rule = (f"map-target, audio only at SNR ≥ 30 dB, on {APP_MODEL}: the peak on the silent object in most frames with the "
            "class kept, in most clips (95 % Wilson interval above one half: holds; below: does not hold)")
    row = _row(report, APP_MODEL, "map-target", HEADLINE)
    if row is None:
        return rule, "", "not measured"
    others = [r for r in report["results"] if r["attack"] == "map-target" and r["condition"] == HEADLINE and r["model"] != APP_MODEL]
    numbers = f"{APP_MODEL} {_rate(row)}, median SNR {row['median_snr_db']:.1f} dB" + "".join(
        f"; {r['model']} {r['succeeded']}/{r['clips']}" for r in others)
    return rule, numbers, row["verdict_most"]


def class_and_map_separately(report: dict) -> tuple[str, str, str]:
    """The finding "the class and the map can be attacked separately": the map moved with the class
    kept, and the class changed with the map kept, each in most clips."""
    condition = "both visible"
    rule = (f"on {APP_MODEL} at the visible budget on both modalities, map-away moves the map off the sounding object "
            "with the class kept in most clips, and class-only changes the class with the peak kept on it in most clips "
            "(each by its Wilson interval; holds when both hold, partly when one does)")
    away, only = _row(report, APP_MODEL, "map-away", condition), _row(report, APP_MODEL, "class-only", condition)
    pgd = _row(report, APP_MODEL, "pgd", condition)
    if away is None or only is None:
        return rule, "", "not measured"
    numbers = f"map-away {_rate(away)}; class-only {_rate(only)}"
    if pgd is not None:
        numbers += (f"; peak on the source under class-only {only['peak_on_source']:.0%} of frames against "
                    f"{pgd['peak_on_source']:.0%} under PGD (clean {pgd['clean_peak_on_source']:.0%})")
    verdicts = [away["verdict_most"], only["verdict_most"]]
    if all(v == "holds" for v in verdicts):
        verdict = "holds"
    elif "holds" in verdicts:
        verdict = "partly (" + ("map without class" if verdicts[0] == "holds" else "class without map") + ")"
    elif all(v == "does not hold" for v in verdicts):
        verdict = "does not hold"
    else:
        verdict = f"inconclusive at {away['clips']} clips"
    return rule, numbers, verdict


FINDINGS = (("An audio-only perturbation at SNR ≥ 30 dB moves the map onto a silent object in most clips", audio_moves_the_map),
            ("The class and the map can be attacked separately", class_and_map_separately))


def markdown(report: dict) -> str:
    """The findings with their rules, success against the budget on the app's model, every entry
    at the core conditions, and the defended entries beside the models they defend."""
    stamp = report.get("stamp", {})
    lines = ["## Attacks on the map", "",
             f"`python -m avdemo.evaluation.map_attacks` ({stamp.get('time', '?')}, {stamp.get('device', '?')}): "
             f"{stamp.get('clips', '?')} AV-Synth test clips that show a silent object in every frame, PGD-{STEPS} with a "
             "seeded random start. A clip succeeds when more than half its frames do: map-target, the peak on the silent "
             "object with the class kept; map-away, the peak off the sounding object with the class kept; class-only, the "
             "class changed with the peak still on the sounding object; PGD (for reference), the class changed. Each rate: "
             "clips succeeded / clips (share, 95 % Wilson interval); in brackets, the same criterion on the clean clips. "
             "Audio at an SNR: each clip's L∞ budget is its RMS level × 10^(-SNR/20), so no perturbation in it is louder.",
             "", "| finding | rule | measured | verdict |", "|---|---|---|---|"]
    for claim, check in FINDINGS:
        rule, numbers, verdict = check(report)
        lines.append(f"| {claim} | {rule} | {numbers or 'not measured'} | **{verdict}** |")
    rows = report.get("results", [])
    for title, models, conditions in (
            (f"Success against the budget, {APP_MODEL}", [APP_MODEL], list(CONDITIONS)),
            ("Every entry with a map, at the core budgets", sorted({r["model"] for r in rows} - {APP_MODEL}), list(CONDITIONS))):
        lines += ["", f"### {title}", "", "| model | budget | map-target | map-away | class-only | PGD (class changed) | "
                  "peak on the source: clean / PGD / class-only |", "|---|---|---|---|---|---|---|"]
        for model in models:
            for condition in conditions:
                found = {attack: _row(report, model, attack, condition) for attack in ATTACKS}
                if not any(found.values()):
                    continue
                cells = [_rate(found[a]) + (f" [{found[a]['clean_rate']:.0%}]" if found[a] and a != "pgd" else "")
                         for a in ATTACKS]
                base = found["pgd"] or found["class-only"] or found["map-away"] or found["map-target"]
                peaks = " / ".join(f"{found[a]['peak_on_source']:.0%}" if found[a] else "–" for a in ("pgd", "class-only"))
                lines.append(f"| {model} | {condition} | {' | '.join(cells)} | {base['clean_peak_on_source']:.0%} / {peaks} |")
    defended = [(model, base) for model, base in (("av-concat-exfmem", "av-concat"), ("av-minsim-exfmem", "av-minsim"),
                                                  ("av-minsim", "av-concat"), ("av-maxsim", "av-concat"), ("av-pcl", "av-concat"))
                if any(r["model"] == model for r in rows)]
    if defended:
        lines += ["", "### Do the CVPR 2021 defenses protect the map?", "",
                  "Each defended entry is attacked with every objective its defense lists (a clip counts as the objective "
                  "that did best on it). Rule: the defense protects the map when its success rate's interval lies wholly "
                  "below the undefended model's rate.", "",
                  "| defended | undefended | budget | attack | defended success | undefended success | protects the map? |",
                  "|---|---|---|---|---|---|---|"]
        for model, base in defended:
            for condition in DEFENDED:
                for attack in ("map-target", "map-away"):
                    mine, theirs = _row(report, model, attack, condition), _row(report, base, attack, condition)
                    if mine is None or theirs is None:
                        continue
                    protects = "yes" if mine["interval"][1] < theirs["rate"] else "no"
                    lines.append(f"| {model} | {base} | {condition} | {attack} | {_rate(mine)} | {_rate(theirs)} | {protects} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluation.map_attacks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20, help="test clips with a silent object in every frame")
    parser.add_argument("--models", nargs="+", default=None, help="zoo entries (default: every entry with a map)")
    parser.add_argument("--out", default=str(REPORT))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    plan = default_plan()
    if args.models:
        unknown = set(args.models) - set(plan)
        if unknown:
            raise SystemExit(f"not zoo entries with a map: {', '.join(sorted(unknown))} (choose from {', '.join(plan)})")
        plan = {name: plan[name] for name in args.models}
    path = Path(args.out)
    report = json.loads(path.read_text()) if path.is_file() else {}

    def save(current: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, separators=(",", ":")))

    run(plan, args.clips, report, save, args.device)
    (path.parent / "map_attacks.md").write_text(markdown(report) + "\n")
    print(f"wrote {path} and {path.parent / 'map_attacks.md'}")


if __name__ == "__main__":
    main()
