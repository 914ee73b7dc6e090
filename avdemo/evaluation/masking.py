"""Temporal masking robustness, the ICLR 2025 paper's Figure 1 (§3, "Corruption Robustness"):
`python -m avdemo.evaluation.masking [--clips-per-class 5] [--models ...] [--seeds 10]` writes
`reports/masking.json`, `reports/masking.md` and `reports/masking.png`.

Accuracy when a share p in {0, 5, ..., 30} % of each clip's time is masked (`avdemo.data.masking`:
silence in the audio, the ImageNet-mean frame in the video) in four groups: the video only
(V✗), the audio only (A✗), both at the same moments (synchronous, A✗⊙V✗) and both at
different moments (asynchronous, A✗⊕V✗).

Clips. 5 % steps need 20 windows, and a window should be a whole frame, so the clips have
T = 20 frames. The models cut the waveform into one window per frame and their audio network
needs at least 4096 samples per window (it downsamples time by 4096), so the usual 65535-sample
clip allows at most T = 16: these clips are AV-Synth test clips (the same plans, so the same
scenes and sounds) rendered with 20 frames and 20 x 4096 = 81920 samples (7.4 s at 11025 Hz).
Window k of the mask is then exactly segment k of the model: frame k and its 4096 samples. The
models were trained at T = 4 (16384-sample windows); a segment hearing 0.37 s is harder, so clean
accuracy here is lower than the cards' (both are in the report).

Draws. Each clip gets `--seeds` mask draws per share, the same draws in every group (the
asynchronous audio windows are the synchronous ones, see `avdemo.data.masking`), so groups are
compared on the same clips and the same moments.

Speed. The zoo's networks fuse each segment on its own and average the fused segments before a
linear classifier, so a clip's logits are the mean of its segments' logits (each segment run as
a T = 1 clip). With windows = segments each segment is in one of four states (audio kept or
silent x frame kept or filled): four passes over the segments give every draw of every share
and group. The first clip of each model is checked against the model run on the masked clip
itself; a model for which that does not hold (or `--direct`) is run on every masked clip.

Numbers. Accuracy = right predictions / (clips x draws), with a 95 % Wilson interval whose
number of trials is the number of clips: draws of one clip are not independent trials, so they
do not narrow it. Per-clip records are kept in the report, so a rerun resumes and a larger run
reuses the clips already measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..data.masking import MODES, TemporalMask, apply_mask, draw_mask
from ..data.synth import SynthConfig, data_version, split_dir
from ..models.segments import segment_waveform, window_length, window_starts
from ..paths import REPORTS
from ..zoo import cached_model, describe, entry_digest, list_models
from .intervals import wilson_interval

REPORT = REPORTS / "masking.json"
FRAMES = UNITS = 20
SEGMENT_SAMPLES = 4096  # the audio network's shortest input
NUM_SAMPLES = FRAMES * SEGMENT_SAMPLES
SHARES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
PER_CLASS, DRAWS = 5, 10
MASK_SEED = 0
FILL = "imagenet-mean"
LABELS = {"visual": "V✗ (video only)", "audio": "A✗ (audio only)", "both-sync": "A✗⊙V✗ (both, synchronous)",
          "both-async": "A✗⊕V✗ (both, asynchronous)"}
HALF_AT = 0.20  # finding (a): at p = 20 % ...
ALPHA = 0.05  # finding (b): two-sided sign test level


def _key(share: float) -> str:
    return f"{share:.2f}"


def default_models() -> list[str]:
    """Every audio-visual zoo entry that is not a defense (the fusions, the localization model, the
    other backbones' AV models), read from the cards, so new AV entries join by themselves; the
    unimodal baselines and the defended entries can be named with --models."""
    chosen = []
    for name in list_models():
        card = describe(name)
        if card.get("config", {}).get("kind") == "av" and card.get("role") != "defense" and not card.get("exfmem"):
            chosen.append(name)
    return chosen


def clip_config() -> SynthConfig:
    return SynthConfig(frames=FRAMES, num_samples=NUM_SAMPLES)


def masking_split(per_class: int, seed: int = 0, log=print):
    """The first `per_class` test clips of each class in the masking format (20 frames, 81920
    samples), cached like every split (`split_dir`); generated, or extended, when it holds fewer.
    A clip depends only on (split, index, seed), so a longer split starts with the same clips."""
    from ..data.bank import load_bank
    from ..data.shards import ShardDataset
    from ..data.synth import write_synth_split

    config = clip_config()
    folder = split_dir("test", seed, config)
    if (folder / "index.json").is_file():
        dataset = ShardDataset(folder)
        if len(dataset) >= per_class * len(dataset.classes):
            return dataset
    bank = load_bank()
    started = time.perf_counter()
    write_synth_split(bank, "test", folder, per_class=per_class, seed=seed, config=config)
    log(f"generated {per_class * len(bank.classes)} test clips at T = {FRAMES}, L = {NUM_SAMPLES} in "
        f"{time.perf_counter() - started:.0f} s -> {folder}")
    return ShardDataset(folder)


def draw_seed(index: int, share: float, draw: int) -> int:
    """The seed of one mask draw of a clip: the same in every group (common random numbers)."""
    return int(np.random.SeedSequence([MASK_SEED, index, round(share * 1000), draw]).generate_state(1)[0])


def clip_masks(index: int, draws: int, units: int = UNITS) -> dict[tuple[str, str], list[TemporalMask]]:
    """(group, share) -> one single-clip mask per draw, for every share > 0."""
    return {(mode, _key(share)): [draw_mask(1, share, modality, synchronous, units, draw_seed(index, share, d))
                                  for d in range(draws)]
            for share in SHARES if share > 0 for mode, (modality, synchronous) in MODES.items()}


def segments_apply(waveform: torch.Tensor, frames: torch.Tensor, units: int) -> bool:
    """Do the mask windows coincide with the model's segments (one frame and its window each)?"""
    steps, total = frames.shape[0], waveform.shape[0]
    length = window_length(total, steps)
    return steps == units and length * steps == total and window_starts(total, steps) == [t * length for t in range(steps)]


def segment_logits(model: torch.nn.Module, waveform: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Logits `(2, 2, T, K)` of each segment of a clip run as a T = 1 clip, by state: [audio kept,
    silent][frame kept, filled]. waveform `(L,)` in [-1, 1], frames `(T, 3, H, W)` in [0, 1]."""
    steps = frames.shape[0]
    full = TemporalMask(torch.ones(1, steps, dtype=torch.bool), torch.ones(1, steps, dtype=torch.bool))
    silent, filled = apply_mask(waveform[None], frames[None], full)
    windows = segment_waveform(torch.cat([waveform[None], silent]), steps)  # (2, T, W)
    pictures = torch.stack([frames, filled[0]])[:, :, None]  # (2, T, 1, 3, H, W)
    with torch.no_grad():
        kept = [model(windows[0], pictures[v]).logits for v in (0, 1)]
        heard_nothing = model(windows[1], pictures[0]).logits
        nothing = model(windows[1, :1], pictures[1, :1]).logits  # silent and filled: the same in every segment
    return torch.stack([torch.stack(kept), torch.stack([heard_nothing, nothing.expand_as(heard_nothing)])])


def masked_logits(states: torch.Tensor, masks: list[TemporalMask]) -> torch.Tensor:
    """Logits `(N, K)` of a clip under N single-clip masks, from its segment states `(2, 2, T, K)`."""
    audio = torch.cat([m.audio for m in masks]).long()
    visual = torch.cat([m.visual for m in masks]).long()
    steps = torch.arange(states.shape[2])[None].expand_as(audio)
    return states[audio, visual, steps].mean(dim=1)


def direct_logits(model: torch.nn.Module, waveform: torch.Tensor, frames: torch.Tensor, masks: list[TemporalMask],
                  batch: int = 8) -> torch.Tensor:
    """Logits `(N, K)` of the model run on the masked clip itself, once per mask."""
    out = []
    with torch.no_grad():
        for start in range(0, len(masks), batch):
            group = masks[start : start + batch]
            mask = TemporalMask(torch.cat([m.audio for m in group]), torch.cat([m.visual for m in group]))
            w, f = apply_mask(waveform[None].expand(len(group), -1), frames[None].expand(len(group), *frames.shape), mask)
            out.append(model(w, f).logits)
    return torch.cat(out)


def measure_clip(model: torch.nn.Module, sample: dict, index: int, draws: int, method: str = "segments",
                 units: int = UNITS, device: str = "cpu") -> dict:
    """One clip: its label, clean prediction and, per group and share > 0, whether each draw was
    classified right (a string of 0/1 per draw). `method` "segments" or "direct" (see the module
    docstring); "segments" needs `segments_apply`."""
    waveform, frames = sample["waveform"].to(device), sample["frames"].to(device)
    if method == "segments" and not segments_apply(waveform, frames, units):
        raise ValueError(f"the {units} mask windows are not the clip's {frames.shape[0]} segments: use method='direct'")
    label = int(sample["label"])
    masks = clip_masks(index, draws, units)
    flat = [mask for group in masks.values() for mask in group]
    if method == "segments":
        states = segment_logits(model, waveform, frames)
        clean = states[0, 0].mean(dim=0)
        logits = masked_logits(states.cpu(), flat)
    else:
        with torch.no_grad():
            clean = model(waveform[None], frames[None]).logits[0]
        logits = direct_logits(model, waveform, frames, flat)
    right = (logits.argmax(-1) == label).tolist()
    correct, position = {}, 0
    for (mode, share), group in masks.items():
        correct.setdefault(mode, {})[share] = "".join("1" if r else "0" for r in right[position : position + len(group)])
        position += len(group)
    return {"label": label, "clean_pred": int(clean.argmax()), "draws": draws, "correct": correct}


def check_segments(model: torch.nn.Module, sample: dict, index: int, units: int = UNITS, device: str = "cpu") -> float:
    """The largest difference between the logits from segment states and from the model run on the
    masked clip, over a synchronous and an asynchronous draw at the largest share and the clean clip."""
    waveform, frames = sample["waveform"].to(device), sample["frames"].to(device)
    masks = [draw_mask(1, 0.0, "both", True, units, 0), draw_mask(1, SHARES[-1], "both", True, units, draw_seed(index, 1, 0)),
             draw_mask(1, SHARES[-1], "both", False, units, draw_seed(index, 1, 1)),
             draw_mask(1, SHARES[-1], "visual", True, units, draw_seed(index, 1, 2))]
    states = segment_logits(model, waveform, frames)
    fast = masked_logits(states.cpu(), masks)
    slow = direct_logits(model, waveform, frames, masks).cpu()
    return float((fast - slow).abs().max() / slow.abs().max().clamp_min(1.0))


def run(models: list[str], dataset, indices: list[int], report: dict, save: Callable[[dict], None], draws: int = DRAWS,
        direct: bool = False, device: str = "cpu", data: str = "", log=print,
        load: Callable[[str, str], torch.nn.Module] = cached_model, digest: Callable[[str], str] = entry_digest) -> dict:
    """Measure every model on the clips `indices` of `dataset` (dicts with waveform `(L,)`, frames
    `(T, 3, H, W)`, label), skipping clips the report already holds for the same weights, data and
    at least as many draws; `save(report)` every few clips and at the end."""
    records = report.setdefault("records", {})
    methods, seconds, measured = {}, {}, {}
    for name in models:
        key = f"{name}|{digest(name)[:16]}|{data}|units{UNITS}|{FILL}"
        done = records.setdefault(key, {})
        todo = [i for i in indices if done.get(str(i), {}).get("draws", 0) < draws]
        method = "direct" if direct else "segments"
        if not todo:
            methods[name] = report.get("stamp", {}).get("methods", {}).get(name, method)
            continue
        model = load(name, device)
        started = time.perf_counter()
        for count, index in enumerate(todo, start=1):
            sample = dataset[index]
            if method == "segments" and count == 1:
                if not segments_apply(sample["waveform"], sample["frames"], UNITS):
                    method = "direct"
                    log(f"{name}: the mask windows are not the model's segments; running every masked clip")
                else:
                    error = check_segments(model, sample, index, UNITS, device)
                    if error > 1e-3:
                        method = "direct"
                        log(f"{name}: segment logits differ from the masked clip's by {error:.2g} (relative); "
                            "running every masked clip")
            done[str(index)] = measure_clip(model, sample, index, draws, method, UNITS, device)
            if count % 10 == 0:
                save(report)
        methods[name], seconds[name], measured[name] = method, time.perf_counter() - started, len(todo)
        cost = report.setdefault("cost", {}).setdefault(key, {"seconds": 0.0, "clips": 0})
        cost["seconds"], cost["clips"] = round(cost["seconds"] + seconds[name], 1), cost["clips"] + len(todo)
        log(f"{name}: {len(todo)} clips in {seconds[name]:.0f} s ({method})")
        save(report)
    report["results"] = results(report, models, indices, draws, data, digest)
    report["run"] = {"seconds": {k: round(v, 1) for k, v in seconds.items()}, "clips_measured": measured}
    report["stamp"] = {**report.get("stamp", {}), "models": models, "clips": len(indices), "indices": list(indices),
                       "draws": draws, "units": UNITS,
                       "frames": FRAMES, "num_samples": NUM_SAMPLES, "shares": list(SHARES), "fill": FILL, "split": "test",
                       "data": data, "methods": methods, "device": device,
                       "time": time.strftime("%Y-%m-%d %H:%M") if measured else report.get("stamp", {}).get("time", "?"),
                       "checkpoints": {name: digest(name) for name in models}}
    save(report)
    return report


def clip_accuracy(record: dict, mode: str, share: str, draws: int) -> float:
    """A clip's share of right draws in a group at a share ("0.00": the clean clip)."""
    if float(share) == 0:
        return float(record["clean_pred"] == record["label"])
    bits = record["correct"][mode][share][:draws]
    return bits.count("1") / len(bits)


def summarise(records: list[dict], mode: str, share: str, draws: int) -> dict:
    """Accuracy over clips and draws with its Wilson interval over clips (n = clips)."""
    n = len(records)
    accuracy = sum(clip_accuracy(r, mode, share, draws) for r in records) / max(n, 1)
    low, high = wilson_interval(accuracy * n, n)
    return {"clips": n, "draws": draws if float(share) > 0 else 1, "accuracy": round(accuracy, 4),
            "interval": [round(low, 4), round(high, 4)]}


def results(report: dict, models: list[str], indices: list[int], draws: int, data: str,
            digest: Callable[[str], str] = entry_digest) -> list[dict]:
    """One row per (model, group, share) over the clips `indices` of the current weights."""
    rows = []
    for name in models:
        stored = report.get("records", {}).get(f"{name}|{digest(name)[:16]}|{data}|units{UNITS}|{FILL}", {})
        records = [stored[str(i)] for i in indices if str(i) in stored and stored[str(i)]["draws"] >= draws]
        if not records:
            continue
        for mode in MODES:
            for share in SHARES:
                rows.append({"model": name, "mode": mode, "share": share, **summarise(records, mode, _key(share), draws)})
    return rows


def paired_records(report: dict, model: str) -> list[dict]:
    """The per-clip records behind a model's rows in the report's results (the stamp's clips,
    weights, data and draws)."""
    stamp = report.get("stamp", {})
    key = f"{model}|{stamp.get('checkpoints', {}).get(model, '')[:16]}|{stamp.get('data')}|units{UNITS}|{FILL}"
    stored = report.get("records", {}).get(key, {})
    return [stored[str(i)] for i in stamp.get("indices", []) if str(i) in stored and stored[str(i)]["draws"] >= stamp["draws"]]


# ---------------------------------------------------------------------------------------
# Findings


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven between `better`
    and `worse` clips (ties left out) if each clip were a fair coin."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _row(report: dict, model: str, mode: str, share: float) -> dict | None:
    return next((r for r in report.get("results", []) if (r["model"], r["mode"]) == (model, mode)
                 and abs(r["share"] - share) < 1e-9), None)


def _models(report: dict) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in report.get("results", [])))


def _combine(verdicts: dict[str, str]) -> str:
    """One verdict from several cases: theirs when they agree, else which case gave which."""
    if not verdicts:
        return "not measured"
    if len(set(verdicts.values())) == 1:
        return next(iter(verdicts.values()))
    grouped: dict[str, list[str]] = {}
    for case, verdict in verdicts.items():
        grouped.setdefault(verdict, []).append(case)
    return "mixed: " + "; ".join(f"{verdict} for {', '.join(cases)}" for verdict, cases in grouped.items())


def half_accuracy_kept(report: dict) -> tuple[str, str, str]:
    """Finding (a): masking up to 20 % leaves at least half the accuracy, in every group."""
    rule = (f"for each model and group, accuracy at p = {HALF_AT:.0%} is at least half the clean accuracy: holds when its "
            "95 % Wilson interval (n = clips) lies at or above half the clean accuracy, does not hold when it lies "
            "below, inconclusive at n clips otherwise")
    verdicts, numbers = {}, []
    for model in _models(report):
        clean = _row(report, model, "visual", 0.0)
        parts = []
        for mode in MODES:
            row = _row(report, model, mode, HALF_AT)
            if clean is None or row is None:
                continue
            half = clean["accuracy"] / 2
            low, high = row["interval"]
            verdicts[f"{model} {mode}"] = ("holds" if low >= half else "does not hold" if high < half
                                           else f"inconclusive at {row['clips']} clips")
            parts.append(f"{mode} {row['accuracy']:.0%} ({low:.0%}-{high:.0%})")
        if clean is not None and parts:
            numbers.append(f"{model} (clean {clean['accuracy']:.0%}, {clean['clips']} clips): " + ", ".join(parts))
    verdict = _combine(verdicts)
    return rule, "; ".join(numbers), verdict


def synchronous_hurts_more(report: dict) -> tuple[str, str, str]:
    """Finding (b): masking both modalities at the same moments hurts more than at different moments."""
    rule = ("per model, each clip's accuracy averaged over every share p > 0 and every draw, synchronous against "
            f"asynchronous (the same windows drawn for both, so the comparison is paired): holds when more clips are worse "
            f"synchronous than asynchronous by a two-sided exact sign test at {ALPHA:.0%} (ties left out), does not hold when "
            f"significantly more are better, inconclusive at n clips otherwise; p = {HALF_AT:.0%} alone is shown beside it")
    draws = report.get("stamp", {}).get("draws", DRAWS)
    shares = [_key(s) for s in SHARES if s > 0]
    verdicts, numbers = {}, []
    for model in _models(report):
        records = paired_records(report, model)
        if not records:
            continue
        difference = [np.mean([clip_accuracy(r, "both-sync", s, draws) - clip_accuracy(r, "both-async", s, draws)
                               for s in shares]) for r in records]
        worse, better = sum(d < 0 for d in difference), sum(d > 0 for d in difference)
        p_value = sign_test(better, worse)
        at = [clip_accuracy(r, "both-sync", _key(HALF_AT), draws) - clip_accuracy(r, "both-async", _key(HALF_AT), draws)
              for r in records]
        worse_at, better_at = sum(d < 0 for d in at), sum(d > 0 for d in at)
        if p_value < ALPHA:
            verdicts[model] = "holds" if worse > better else "does not hold"
        else:
            verdicts[model] = f"inconclusive at {len(records)} clips"
        numbers.append(f"{model}: sync − async {100 * np.mean(difference):+.1f} points over p > 0, {worse} clips worse / "
                       f"{better} better / {len(records) - worse - better} tied (sign test p = {p_value:.2g}); at p = "
                       f"{HALF_AT:.0%} {100 * np.mean(at):+.1f} points, {worse_at} worse / {better_at} better "
                       f"(p = {sign_test(better_at, worse_at):.2g})")
    return rule, "; ".join(numbers), _combine(verdicts)


FINDINGS = (("Masking up to 20 % of the clip leaves at least half the accuracy", half_accuracy_kept),
            ("Masking both modalities at the same moments hurts more than masking them at different moments",
             synchronous_hurts_more))


def findings(report: dict) -> list[dict]:
    """The two findings of the paper's Figure 1, each with its fixed rule, numbers and verdict."""
    out = []
    for claim, check in FINDINGS:
        rule, numbers, verdict = check(report)
        out.append({"claim": claim, "rule": rule, "measured": numbers or "not measured", "verdict": verdict})
    return out


# ---------------------------------------------------------------------------------------
# Report


def _method_note(stamp: dict) -> str:
    methods = stamp.get("methods", {})
    direct = sorted(name for name, method in methods.items() if method != "segments")
    note = ("Logits from the segment states (see the module), checked on each model's first clip against the model run "
            "on the masked clip")
    if not direct:
        return note + "."
    return note + f"; run on every masked clip for {', '.join(direct)}."


def markdown(report: dict) -> str:
    """The findings with their rules, then accuracy per model, group and share."""
    stamp = report.get("stamp", {})
    per_class = stamp.get("clips_per_class", "?")
    spent = [report.get("cost", {}).get(f"{m}|{d[:16]}|{stamp.get('data')}|units{UNITS}|{FILL}")
             for m, d in stamp.get("checkpoints", {}).items()]
    spent = [c for c in spent if c and c["clips"]]
    cost = (f", measured in {sum(c['seconds'] for c in spent) / 60:.1f} min on {stamp.get('hardware', stamp.get('device', '?'))}: "
            f"{sum(c['seconds'] for c in spent) / sum(c['clips'] for c in spent):.1f} s per clip and model" if spent else "")
    lines = ["## Temporal masking (ICLR 2025, Figure 1)", ""]
    stale = []
    for model, digest in stamp.get("checkpoints", {}).items():
        try:
            if entry_digest(model) != digest:
                stale.append(model)
        except Exception:  # an entry no longer in the zoo
            stale.append(model)
    if stale:
        lines += [f"**Out of date: measured on other weights than ship now for {', '.join(stale)}; rerun "
                  "`python -m avdemo.evaluation.masking`.**", ""]
    lines += [f"`python -m avdemo.evaluation.masking` ({stamp.get('time', '?')}{cost}): {stamp.get('clips', '?')} AV-Synth test "
              f"clips ({per_class} per class), rendered with T = {FRAMES} frames and {NUM_SAMPLES} samples so that each of the "
              f"{UNITS} mask windows (5 % of the clip) is one frame and its {SEGMENT_SAMPLES}-sample window, the model's "
              "segment (the audio network needs 4096 samples a segment, so the usual 65535-sample clip allows at most 16). "
              "A masked window is silence in the audio and the ImageNet-mean frame (0 after the models' normalisation) in the "
              f"video; asynchronous masks use disjoint windows. {stamp.get('draws', '?')} mask draws per clip and share, the "
              "same windows in every group. Accuracy over clips × draws with a 95 % Wilson interval over clips (n = clips; "
              "draws of a clip do not narrow it). The models were trained at T = 4: each segment here hears 0.37 s instead "
              "of 1.5 s, so clean accuracy is below the cards' (column 'card, T = 4'). " + _method_note(stamp), "",
              "| finding | rule | measured | verdict |", "|---|---|---|---|"]
    for item in findings(report):
        lines.append(f"| {item['claim']} | {item['rule']} | {item['measured']} | **{item['verdict']}** |")
    lines += ["", "Accuracy in % [95 % interval], every number on the clips in the column 'clips'; plotted in `masking.png`.",
              "", "| model | card, T = 4 | clips | group | " + " | ".join(f"p = {s:.0%}" for s in SHARES) + " |",
              "|---|---|---|---|" + "---|" * len(SHARES)]
    for model in _models(report):
        try:
            card = describe(model).get("metrics", {}).get("test_accuracy")
        except Exception:  # an entry no longer in the zoo
            card = None
        for mode in MODES:
            cells = []
            for share in SHARES:
                row = _row(report, model, mode, share)
                cells.append("–" if row is None else
                             f"{100 * row['accuracy']:.1f} [{100 * row['interval'][0]:.0f}-{100 * row['interval'][1]:.0f}]")
            clips = _row(report, model, mode, 0.0)
            lines.append(f"| {model} | {'–' if card is None else f'{card:.1%}'} | {clips['clips'] if clips else '–'} | "
                         f"{LABELS[mode]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(report: dict):
    """Accuracy against the masked share, one panel per model, one line per group with its interval;
    the dotted line is half the clean accuracy (finding a)."""
    from plotly.subplots import make_subplots

    models = _models(report)
    columns = min(3, max(1, len(models)))
    rows = -(-len(models) // columns) or 1
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=models, shared_yaxes=True,
                           horizontal_spacing=0.04, vertical_spacing=0.12)
    colours = {"visual": "#1f77b4", "audio": "#ff7f0e", "both-sync": "#d62728", "both-async": "#2ca02c"}
    offsets = {"visual": -0.45, "audio": -0.15, "both-sync": 0.15, "both-async": 0.45}  # so the intervals do not hide each other
    for number, model in enumerate(models):
        row, col = number // columns + 1, number % columns + 1
        for mode in MODES:
            points = [r for r in (_row(report, model, mode, s) for s in SHARES) if r is not None]
            figure.add_scatter(x=[100 * s + offsets[mode] for s in SHARES[: len(points)]], y=[p["accuracy"] for p in points],
                               error_y={"type": "data", "symmetric": False,
                                        "array": [p["interval"][1] - p["accuracy"] for p in points],
                                        "arrayminus": [p["accuracy"] - p["interval"][0] for p in points],
                                        "thickness": 1, "width": 2},
                               mode="lines+markers", name=LABELS[mode], line={"color": colours[mode]},
                               legendgroup=mode, showlegend=number == 0, row=row, col=col)
        clean = _row(report, model, "visual", 0.0)
        if clean is not None:
            figure.add_scatter(x=[0, 100 * SHARES[-1]], y=[clean["accuracy"] / 2] * 2, mode="lines",
                               line={"dash": "dot", "color": "grey"}, name="half the clean accuracy",
                               legendgroup="half", showlegend=number == 0, row=row, col=col)
    clips = report.get("stamp", {}).get("clips", "?")
    figure.update_layout(height=330 * rows + 110, width=380 * columns + 220,
                         title=f"Accuracy, a share p of the clip masked along time ({clips} clips)")
    figure.update_xaxes(title_text="masked share p (%)")
    figure.update_yaxes(range=[0, 1.02])
    figure.update_yaxes(title_text="accuracy", col=1)
    return figure


def write_outputs(report: dict, path: Path, log=print) -> list[Path]:
    """masking.json (already saved), masking.md and masking.png beside it."""
    markdown_path, png = path.with_suffix(".md"), path.with_suffix(".png")
    markdown_path.write_text(markdown(report).replace("## Temporal masking", "# Temporal masking", 1) + "\n")
    written = [path, markdown_path]
    try:
        figure(report).write_image(str(png), scale=1)
        written.append(png)
    except Exception as error:  # kaleido needs a Chrome
        log(f"{png.name} not written ({error})")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluation.masking", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips-per-class", type=int, default=PER_CLASS, help="test clips per class (18 classes)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="zoo entries (default: every audio-visual entry that is not a defense)")
    parser.add_argument("--seeds", type=int, default=DRAWS, help="mask draws per clip and share")
    parser.add_argument("--direct", action="store_true", help="run the model on every masked clip (slow; no segment states)")
    parser.add_argument("--out", type=Path, default=REPORT)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.clips_per_class < 1 or args.seeds < 1:
        raise SystemExit("--clips-per-class and --seeds must be at least 1")
    models = args.models or default_models()
    unknown = sorted(set(models) - set(list_models()))
    if unknown:
        raise SystemExit(f"not zoo entries: {', '.join(unknown)} (choose from {', '.join(list_models())})")
    dataset = masking_split(args.clips_per_class)
    indices = list(range(args.clips_per_class * len(dataset.classes)))
    path = args.out
    report = json.loads(path.read_text()) if path.is_file() else {}

    def save(current: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, separators=(",", ":"), ensure_ascii=False))

    report["stamp"] = {**report.get("stamp", {}), "clips_per_class": args.clips_per_class}
    run(models, dataset, indices, report, save, args.seeds, args.direct, args.device, data_version(dataset.root))
    report["stamp"]["hardware"] = (torch.cuda.get_device_name() if args.device.startswith("cuda") else
                                   f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}")
    report["findings"] = findings(report)
    save(report)
    for written in write_outputs(report, path):
        print(f"wrote {written}")
    for item in report["findings"]:
        print(f"{item['claim']}: {item['verdict']}")


if __name__ == "__main__":
    main()
