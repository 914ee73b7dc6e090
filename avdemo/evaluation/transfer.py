"""Black-box transfer between architectures (ICLR 2025, §3 and §6.2-6.3):
`python -m avdemo.evaluation.transfer` writes `reports/transfer.json`, `.md` and `transfer.png`.

Adversarial clips are crafted on a surrogate (a zoo entry, or an ensemble whose loss is the mean
of several entries') and judged on every victim: the undefended audio-visual entries with concat
or sum fusion, whatever their backbones. Success on a victim is the attack success rate of every
table: among the clips the victim gets right clean, the share it gets wrong attacked. `noise`
(random signs at the full budget) is the control: a transfer rate means something only above it.

Each attack is run with the settings the sweep chose (`--sweep` runs it on the validation split,
against transfer to the victims, and writes what it tried into the report); every multi-input
attack (MIG's path points, PAM's paths x scales, TIA / TMA's copies) gets the same number of
inputs per step, so the comparison is at equal gradient work as well as equal budget.

Records are kept per (surrogate, attack, budget, modality) and clip, with the weights' digests, and
adversarial perturbations in the cache, so a rerun measures only what is missing and a new victim
is judged without crafting again.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..attacks import AttackSettings, budget_settings, create_attack
from ..data.cache import cache_dir
from ..models.ensemble import Ensemble
from ..paths import REPORTS
from ..zoo import cached_model, describe, entry_digest, list_models
from .intervals import wilson_interval

REPORT = REPORTS / "transfer.json"
BASELINES = ("fgsm", "ifgsm", "mim", "mig", "pam")
PROPOSED = ("tia", "mma", "tma")
ATTACKS = ("noise", *BASELINES, *PROPOSED)
BUDGETS = ("visible", "caption")
MODALITIES = ("both", "audio", "visual")
STEPS = 10
VIEWS = 4  # inputs per step besides the point itself (MIG: path points, the point itself among them)
EQUAL_WORK = {"mig": dict(path_points=VIEWS), "pam": dict(paths=2, scales=2), "tia": dict(copies=VIEWS),
              "tma": dict(copies=VIEWS)}
HEADLINE = ("visible", "both")
ENSEMBLE_PREFIX = "ensemble:"
BACKBONE_LETTERS = {"resnet18": "R", "vgg": "V", "waveform": "W", "logmel": "M"}


def transfer_models() -> list[str]:
    """The undefended audio-visual entries with concat or sum fusion (no attention), any backbones."""
    chosen = []
    for name in list_models():
        card = describe(name)
        config = card["config"]
        if (config["kind"] == "av" and config["fusion"] in ("concat", "sum") and not config["attention"]
                and not card.get("defense") and not card.get("exfmem")):
            chosen.append(name)
    return chosen


@functools.lru_cache(maxsize=None)
def architecture(name: str) -> str:
    """The paper's label {visual}{fusion}{audio}: R / V (ResNet18, VGG), c / s, W / M (waveform, log-mel)."""
    config = describe(name)["config"]
    return (BACKBONE_LETTERS.get(config.get("visual_backbone", "resnet18"), "?") + config["fusion"][0]
            + BACKBONE_LETTERS.get(config.get("audio_backbone", "waveform"), "?"))


def members(surrogate: str) -> list[str]:
    """The zoo entries a surrogate crafts with: one, or an ensemble's ("ensemble:a+b+c")."""
    return surrogate.removeprefix(ENSEMBLE_PREFIX).split("+") if surrogate.startswith(ENSEMBLE_PREFIX) else [surrogate]


def surrogate_model(surrogate: str, device: str) -> torch.nn.Module:
    names = members(surrogate)
    return cached_model(names[0], device) if len(names) == 1 else Ensemble([cached_model(n, device) for n in names])


def cross_architecture(surrogate: str, victim: str) -> bool:
    """Whether the victim is none of the surrogate's members and differs from each in a backbone."""
    if victim in members(surrogate):
        return False
    mine = architecture(victim)
    return all(architecture(m)[0] != mine[0] or architecture(m)[2] != mine[2] for m in members(surrogate))


@dataclass(frozen=True)
class Task:
    """One crafting job: an attack with its settings on a surrogate, at a named budget on a modality."""

    surrogate: str
    attack: str
    budget: str
    modality: str
    options: tuple[tuple[str, object], ...] = ()

    @property
    def options_key(self) -> str:
        return _options_key(dict(self.options))

    @property
    def key(self) -> str:
        digests = "+".join(entry_digest(m)[:12] for m in members(self.surrogate))
        return f"{self.surrogate}|{digests}|{self.attack}|{self.options_key}|{self.budget}|{self.modality}"

    def settings(self, seed: int) -> AttackSettings:
        """The named budget's settings with the task's options; `step_fraction` sets both step sizes
        to that fraction of their budget."""
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in self.options}
        fraction = options.pop("step_fraction", None)
        settings = budget_settings(self.budget, self.modality, steps=STEPS, seed=seed, **options)
        if fraction is not None:
            scale = lambda eps: tuple(e * fraction for e in eps) if isinstance(eps, tuple) else eps * fraction  # noqa: E731
            settings = settings.replace(step_audio=scale(settings.eps_audio), step_visual=scale(settings.eps_visual))
        return settings


def chosen_options(report: dict, attack: str) -> tuple[tuple[str, object], ...]:
    """The attack's settings: the sweep's choice if the report holds one, else equal work."""
    chosen = report.get("sweep", {}).get("chosen", {}).get(attack)
    return tuple(sorted((chosen if chosen is not None else EQUAL_WORK.get(attack, {})).items()))



def _batches(dataset, clips: list[int], size: int):
    for start in range(0, len(clips), size):
        part = clips[start:start + size]
        samples = [dataset[i] for i in part]
        yield part, (torch.stack([s["waveform"] for s in samples]), torch.stack([s["frames"] for s in samples]),
                     torch.tensor([s["label"] for s in samples]))


def _data_tag(dataset) -> str:
    """Which clips a clip index points into: the shard folder's parents (clip format) and name (split),
    since val and test both number their clips from 0; "samples" for an in-memory list."""
    root = getattr(dataset, "root", None)
    return "-".join(Path(root).parts[-3:]) if root else "samples"


def _delta_path(task: Task, dataset) -> Path:
    name = "".join(c if c.isalnum() or c in "-_.=," else "_" for c in f"{_data_tag(dataset)}|{task.key}".replace("|", "__"))
    return cache_dir() / "transfer" / f"{name}.npz"


def craft_task(task: Task, dataset, clips: list[int], device: str, batch_size: int, log=print) -> dict[int, dict]:
    """Perturbations of `clips` (cached as float16 in the cache: clip -> audio, frames) and, per clip, the
    surrogate's audio-visual cosine and temporal variance at the adversarial input (NaN for a model without
    them). Crafted once; later calls read the cache."""
    path = _delta_path(task, dataset)
    stored = dict(np.load(path)) if path.is_file() else {}
    todo = [c for c in clips if f"{c}/audio" not in stored]
    if todo:
        model = surrogate_model(task.surrogate, device)
        started = time.perf_counter()
        for part, (waveform, frames, labels) in _batches(dataset, todo, batch_size):
            attack = create_attack(task.attack, model, task.settings(seed=part[0]))
            result = attack(waveform.to(device), frames.to(device), labels.to(device))
            for row, clip in enumerate(part):
                stored[f"{clip}/audio"] = result.delta_waveform[row].cpu().numpy().astype(np.float16)
                stored[f"{clip}/frames"] = result.delta_frames[row].cpu().numpy().astype(np.float16)
                stored[f"{clip}/stats"] = np.array([result.trace.modality_cosine[-1, row].item(),
                                                    result.trace.temporal_variance[-1, row].item()], np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **stored)
        log(f"  crafted {task.attack} on {task.surrogate} ({task.budget}, {task.modality}): {len(todo)} clips in "
            f"{time.perf_counter() - started:.0f} s")
    return {c: {"audio": stored[f"{c}/audio"], "frames": stored[f"{c}/frames"], "stats": stored[f"{c}/stats"]}
            for c in clips}


def judge(victim: str, dataset, clips: list[int], perturbations: dict[int, dict] | None, device: str,
          batch_size: int) -> dict[int, bool]:
    """clip -> whether the victim classifies it right: clean (no perturbations) or perturbed (within
    the valid ranges: a float16 round trip may step past them by a hair)."""
    model = cached_model(victim, device)
    right = {}
    with torch.no_grad():
        for part, (waveform, frames, labels) in _batches(dataset, clips, batch_size):
            if perturbations is not None:
                waveform = (waveform + torch.stack([torch.from_numpy(perturbations[c]["audio"].astype(np.float32))
                                                    for c in part])).clamp(-1, 1)
                frames = (frames + torch.stack([torch.from_numpy(perturbations[c]["frames"].astype(np.float32))
                                                for c in part])).clamp(0, 1)
            predicted = model(waveform.to(device), frames.to(device)).logits.argmax(-1).cpu()
            right.update({c: bool(p == y) for c, p, y in zip(part, predicted, labels)})
    return right


def run(tasks: list[Task], victims: list[str], dataset, clips: list[int], report: dict, save, device: str = "cpu",
        batch_size: int = 9, log=print) -> dict:
    """Craft every task on `clips` and judge on every victim, keeping what the report already holds."""
    clean = report.setdefault("clean", {})
    victim_keys = {v: f"{v}|{entry_digest(v)[:12]}" for v in victims}  # the clean verdicts' and the records' key
    for victim, key in victim_keys.items():
        missing = [c for c in clips if str(c) not in clean.get(key, {})]
        if missing:
            clean.setdefault(key, {}).update({str(c): r for c, r in judge(victim, dataset, missing, None, device,
                                                                         batch_size).items()})
    records = report.setdefault("records", {})
    for task in tasks if clips else ():
        record = records.setdefault(task.key, {"clips": {}, "victims": {}})
        todo_victims = [v for v in victims if any(str(c) not in record["victims"].get(victim_keys[v], {}) for c in clips)]
        if not todo_victims and all(str(c) in record["clips"] for c in clips):
            continue
        perturbations = craft_task(task, dataset, clips, device, batch_size, log)
        for clip in clips:
            cosine, variance = (float(v) for v in perturbations[clip]["stats"])
            record["clips"][str(clip)] = {"cosine": None if math.isnan(cosine) else cosine,
                                          "variance": None if math.isnan(variance) else variance}
        for victim in todo_victims:
            verdicts = judge(victim, dataset, clips, perturbations, device, batch_size)
            record["victims"].setdefault(victim_keys[victim], {}).update({str(c): r for c, r in verdicts.items()})
        save(report)
    return report


# -- summaries ---------------------------------------------------------------------------------
def _parse(key: str) -> dict:
    surrogate, _, attack, options, budget, modality = key.split("|")
    return {"surrogate": surrogate, "attack": attack, "options": options, "budget": budget, "modality": modality}


def outcomes(report: dict, clips: list[str] | None = None) -> list[dict]:
    """One row per (task, victim) on the weights that ship now: successes among the clips the victim
    got right clean, with the task's mean cosine and variance at its adversarial inputs."""
    current = {name: entry_digest(name)[:12] for name in list_models()}
    rows = []
    for key, record in report.get("records", {}).items():
        task = _parse(key)
        if any(current.get(m) != d for m, d in zip(members(task["surrogate"]), key.split("|")[1].split("+"))):
            continue
        stats = [record["clips"][c] for c in record["clips"] if clips is None or c in clips]
        cosines = [s["cosine"] for s in stats if s["cosine"] is not None]
        for victim_key, verdicts in record["victims"].items():
            victim, digest = victim_key.split("|")
            if current.get(victim) != digest:
                continue
            clean = report["clean"].get(victim_key, {})
            eligible = [c for c in verdicts if clean.get(c) and (clips is None or c in clips)]
            succeeded = [c for c in eligible if not verdicts[c]]
            rows.append({**task, "victim": victim, "cross_architecture": cross_architecture(task["surrogate"], victim),
                         "trials": len(eligible), "successes": len(succeeded), "succeeded_clips": sorted(succeeded, key=int),
                         "eligible_clips": sorted(eligible, key=int),
                         "cosine": float(np.mean(cosines)) if cosines else None})
    return rows


def matrix_rows(report: dict) -> list[dict]:
    """The `outcomes` of each attack at the settings the report chose for it (`chosen_options`):
    records made at other settings (before a sweep changed its choice) stay but are not counted."""
    return [r for r in outcomes(report) if r["options"] == _options_key(dict(chosen_options(report, r["attack"])))]


def pooled(rows: list[dict], **match) -> tuple[int, int]:
    """(successes, trials) summed over the rows matching every field given."""
    chosen = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return sum(r["successes"] for r in chosen), sum(r["trials"] for r in chosen)


def _rate(successes: int, trials: int) -> str:
    if not trials:
        return "–"
    low, high = wilson_interval(successes, trials)
    return f"{successes}/{trials} ({successes / trials:.0%}, {low:.0%}-{high:.0%})"


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value for paired outcomes that differ (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _paired(rows: list[dict], first: str, second: str, **match) -> tuple[int, int]:
    """(units where `first` succeeds and `second` fails, the reverse) over the same (surrogate, victim,
    clip) units eligible for both."""
    def units(attack):
        return {(r["surrogate"], r["victim"], c): c in r["succeeded_clips"]
                for r in rows if r["attack"] == attack and all(r[k] == v for k, v in match.items())
                for c in r["eligible_clips"]}
    a, b = units(first), units(second)
    shared = a.keys() & b.keys()
    return sum(a[u] and not b[u] for u in shared), sum(b[u] and not a[u] for u in shared)


# -- findings ----------------------------------------------------------------------------------
def transfer_exists(rows: list[dict]) -> tuple[str, str, str]:
    budget, modality = HEADLINE
    rule = (f"at the {budget} budget on both modalities, pooled over surrogate-victim pairs of different architectures: "
            "the best gradient attack's success interval lies wholly above the random-noise control's")
    cross = dict(cross_architecture=True, budget=budget, modality=modality)
    noise = pooled(rows, attack="noise", **cross)
    rates = {a: pooled(rows, attack=a, **cross) for a in (*BASELINES, *PROPOSED)}
    rates = {a: r for a, r in rates.items() if r[1]}
    if not rates or not noise[1]:
        return rule, "no cross-architecture pair measured", "not measured"
    best = max(rates, key=lambda a: rates[a][0] / rates[a][1])
    numbers = f"{best} {_rate(*rates[best])} against noise {_rate(*noise)}"
    if wilson_interval(*rates[best])[0] > wilson_interval(*noise)[1]:
        return rule, numbers, "holds"
    if rates[best][0] / rates[best][1] <= noise[0] / noise[1]:
        return rule, numbers, "does not hold"
    return rule, numbers, f"inconclusive at {rates[best][1]} clip-victim pairs"


def proposed_transfer_better(rows: list[dict]) -> tuple[str, str, str]:
    budget, modality = HEADLINE
    rule = ("each of TIA, MMA, TMA against the strongest of FGSM, I-FGSM, MI-FGSM, MIG, PAM, at the "
            f"{budget} budget on both modalities, on the same cross-architecture (surrogate, victim, clip) units: "
            "two-sided sign test on the units where exactly one succeeds, p < 0.05")
    cross = dict(cross_architecture=True, budget=budget, modality=modality)
    rates = {a: pooled(rows, attack=a, **cross) for a in BASELINES}
    rates = {a: r for a, r in rates.items() if r[1]}
    if not rates:
        return rule, "no cross-architecture pair measured", "not measured"
    strongest = max(rates, key=lambda a: rates[a][0] / rates[a][1])
    verdicts, numbers = [], [f"strongest baseline {strongest} {_rate(*rates[strongest])}"]
    for attack in PROPOSED:
        mine = pooled(rows, attack=attack, **cross)
        if not mine[1]:
            continue
        wins, losses = _paired(rows, attack, strongest, **cross)
        p = sign_test(wins, losses)
        verdicts.append("better" if wins > losses and p < 0.05 else "worse" if losses > wins and p < 0.05 else "tie")
        numbers.append(f"{attack} {_rate(*mine)}, {wins} units only it fooled vs {losses} only {strongest} did, p = {p:.2g}")
    if not verdicts:
        return rule, "; ".join(numbers), "not measured"
    verdict = ("holds" if all(v == "better" for v in verdicts) else "does not hold" if "worse" in verdicts
               and "better" not in verdicts else "partly" if "better" in verdicts
               else f"inconclusive at {rates[strongest][1]} clip-victim pairs")
    return rule, "; ".join(numbers), verdict


def spearman(x: list[float], y: list[float]) -> float:
    rank = lambda v: np.argsort(np.argsort(v)).astype(float)  # noqa: E731 (no ties in practice: means of floats)
    rx, ry = rank(x), rank(y)
    return float(np.corrcoef(rx, ry)[0, 1]) if len(x) > 2 and rx.std() and ry.std() else float("nan")


def cosine_goes_with_transfer(rows: list[dict]) -> tuple[str, str, str]:
    budget, modality = HEADLINE
    rule = (f"across the gradient attacks at the {budget} budget on both modalities: Spearman correlation of the "
            "surrogate's mean audio-visual cosine at the adversarial inputs with the pooled cross-architecture success "
            "rate; negative with an exact permutation p < 0.05 holds, positive with p < 0.05 does not")
    points = []
    for attack in (*BASELINES, *PROPOSED):
        chosen = [r for r in rows if r["attack"] == attack and r["budget"] == budget and r["modality"] == modality
                  and r["cross_architecture"] and r["cosine"] is not None]
        successes, trials = sum(r["successes"] for r in chosen), sum(r["trials"] for r in chosen)
        if trials:
            points.append((attack, float(np.mean([r["cosine"] for r in chosen])), successes / trials))
    if len(points) < 4:
        return rule, f"{len(points)} attacks measured", "not measured"
    cos, rate = [p[1] for p in points], [p[2] for p in points]
    rho = spearman(cos, rate)
    permutations = [spearman(cos, list(order)) for order in itertools.permutations(rate)] if len(rate) <= 8 else []
    p = (sum(abs(r) >= abs(rho) - 1e-12 for r in permutations) / len(permutations)) if permutations else float("nan")
    numbers = f"ρ = {rho:.2f} over {len(points)} attacks (p = {p:.2g}): " + ", ".join(
        f"{a} cos {c:.2f} → {r:.0%}" for a, c, r in points)
    verdict = ("holds" if rho < 0 and p < 0.05 else "does not hold" if rho > 0 and p < 0.05
               else f"inconclusive at {len(points)} attacks")
    return rule, numbers, verdict


FINDINGS = (
    ("Audio-visual adversarial examples transfer between architectures", transfer_exists),
    ("TIA, MMA and TMA transfer better than FGSM, I-FGSM, MI-FGSM, MIG and PAM", proposed_transfer_better),
    ("A lower audio-visual cosine goes with higher transfer (the paper's Figure 3)", cosine_goes_with_transfer),
)


def findings(rows: list[dict]) -> list[tuple[str, str, str, str]]:
    """(claim, rule, numbers, verdict) of every finding, from the `outcomes` rows."""
    return [(claim, *rule(rows)) for claim, rule in FINDINGS]


def markdown(report: dict) -> str:
    rows = matrix_rows(report)
    stamp = report.get("stamp", {})
    lines = ["## Transfer between architectures (ICLR 2025)", "",
             f"Crafted on a surrogate, judged on each victim: {stamp.get('clips', '?')} {stamp.get('split', 'test')} clips "
             f"({stamp.get('selection', '')}), {STEPS} steps, each attack at the settings the validation sweep chose "
             f"(below; without a sweep, steps of ε/8 and {VIEWS} extra inputs per step for every attack that takes "
             f"several, MIG {VIEWS} path points with the point itself among them). Success = share of the clips the victim gets right clean that it "
             "gets wrong attacked, with its 95 % Wilson interval; `noise` is random signs at the full budget. "
             "Pairs are pooled over (surrogate, victim) and clips, which are not independent: read intervals as a guide.",
             "", "| claim | rule | numbers | verdict |", "|---|---|---|---|"]
    lines += [f"| {claim} | {rule} | {numbers} | **{verdict}** |" for claim, rule, numbers, verdict in findings(rows)]
    for budget in BUDGETS:
        for modality in MODALITIES:
            chosen = [r for r in rows if r["budget"] == budget and r["modality"] == modality]
            if not chosen:
                continue
            lines += ["", f"### {budget} budget, {modality}", "",
                      "| attack | white-box (surrogate itself) | same architecture | cross-architecture | mean cosine |",
                      "|---|---|---|---|---|"]
            for attack in ATTACKS:
                mine = [r for r in chosen if r["attack"] == attack]
                if not mine:
                    continue
                white = pooled([r for r in mine if r["victim"] in members(r["surrogate"])])
                same = pooled([r for r in mine if r["victim"] not in members(r["surrogate"]) and not r["cross_architecture"]])
                cross = pooled([r for r in mine if r["cross_architecture"]])
                cosines = [r["cosine"] for r in mine if r["cosine"] is not None]
                lines.append(f"| {attack} | {_rate(*white)} | {_rate(*same)} | {_rate(*cross)} | "
                             f"{np.mean(cosines):.2f} |" if cosines else f"| {attack} | {_rate(*white)} | {_rate(*same)} | "
                             f"{_rate(*cross)} | – |")
            lines += ["", *_pair_table(chosen)]
    lines += _ensemble_lines(rows)
    sweep = report.get("sweep")
    if sweep:
        effort = {a: sum(t["attack"] == a for t in sweep.get("trials", [])) for a in (*BASELINES, *PROPOSED)}
        lines += ["", "### How each attack's settings were chosen", "", sweep.get("protocol", ""),
                  "Settings tried per attack (the tuning effort; unequal where the numbers differ): "
                  + ", ".join(f"{a} {n}" for a, n in effort.items()) + ".", "",
                  "| attack | settings | success on val (victims of another architecture) |", "|---|---|---|"]
        for trial in sweep.get("trials", []):
            chosen = sweep["chosen"].get(trial["attack"])
            mark = " **(chosen)**" if chosen is not None and _options_key(chosen) == _options_key(trial["options"]) else ""
            lines.append(f"| {trial['attack']} | {_options_key(trial['options']) or 'defaults'}{mark} | "
                         f"{_rate(trial['successes'], trial['trials'])} |")
    lines += ["", "The matrix at the visible budget on both modalities is plotted in `reports/transfer.png`."]
    return "\n".join(lines)


def _ensemble_lines(rows: list[dict]) -> list[str]:
    """Each ensemble surrogate against those of its members measured alone, at the headline budget, on
    the ensemble's cross-architecture victims and the clips both were judged on."""
    budget, modality = HEADLINE
    rows = [r for r in rows if r["budget"] == budget and r["modality"] == modality]
    by_task = {(r["surrogate"], r["attack"], r["victim"]): r for r in rows}
    lines = []
    for ensemble in sorted({r["surrogate"] for r in rows if r["surrogate"].startswith(ENSEMBLE_PREFIX)}):
        alone = [m for m in members(ensemble) if any(r["surrogate"] == m for r in rows)]
        victims = sorted({r["victim"] for r in rows if r["surrogate"] == ensemble and r["cross_architecture"]})
        if not victims:
            continue
        lines += ["", f"### Ensemble surrogate {ensemble.removeprefix(ENSEMBLE_PREFIX)} ({budget} budget, {modality})", "",
                  f"On its victims of another architecture ({', '.join(victims)}), against each member measured alone on "
                  "the same victims and clips.", "",
                  "| attack | ensemble | " + " | ".join(f"ensemble against {m} alone, same clips" for m in alone) + " |", "|---|---|" + "---|" * len(alone)]
        for attack in ATTACKS:
            mine = [r for r in rows if r["surrogate"] == ensemble and r["attack"] == attack and r["victim"] in victims]
            if not mine:
                continue
            cells = [_rate(*pooled(mine))]
            for member in alone:
                ours = theirs = shared_count = 0
                for r in mine:
                    other = by_task.get((member, attack, r["victim"]))
                    if other is None:
                        continue
                    shared = set(r["eligible_clips"]) & set(other["eligible_clips"])
                    ours += len(shared & set(r["succeeded_clips"]))
                    theirs += len(shared & set(other["succeeded_clips"]))
                    shared_count += len(shared)
                cells.append(f"{ours}/{shared_count} against {theirs}/{shared_count}")
            lines.append(f"| {attack} | " + " | ".join(cells) + " |")
    return lines


def _pair_table(rows: list[dict]) -> list[str]:
    """The matrix itself, folded: successes / clips per (surrogate, victim) and attack."""
    attacks = [a for a in ATTACKS if any(r["attack"] == a for r in rows)]
    pairs = sorted({(r["surrogate"], r["victim"]) for r in rows})
    lines = ["<details><summary>per surrogate and victim (successes / clips the victim gets right clean)</summary>", "",
             "| surrogate → victim | " + " | ".join(attacks) + " |", "|---|" + "---|" * len(attacks)]
    for surrogate, victim in pairs:
        tag = "" if victim in members(surrogate) else " (cross)" if cross_architecture(surrogate, victim) else " (same)"
        cells = [pooled(rows, surrogate=surrogate, victim=victim, attack=a) for a in attacks]
        lines.append(f"| {surrogate} → {victim} ({architecture(victim)}){tag} | "
                     + " | ".join(f"{s}/{n}" if n else "–" for s, n in cells) + " |")
    return lines + ["", "</details>"]


def figure(report: dict, path: Path) -> None:
    """Heatmaps of success rate, surrogate x victim, one panel per attack, at the headline budget."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    budget, modality = HEADLINE
    rows = [r for r in matrix_rows(report) if r["budget"] == budget and r["modality"] == modality]
    attacks = [a for a in ATTACKS if any(r["attack"] == a for r in rows)]
    if not attacks:
        return
    surrogates = sorted({r["surrogate"] for r in rows})
    victims = sorted({r["victim"] for r in rows}, key=architecture)
    columns = min(3, len(attacks))
    lines = math.ceil(len(attacks) / columns)
    figure = make_subplots(rows=lines, cols=columns, subplot_titles=attacks, horizontal_spacing=0.04,
                           vertical_spacing=0.08, shared_yaxes=True, shared_xaxes=True)
    label = lambda n: "+".join(architecture(m) for m in members(n)) + (" ens." if len(members(n)) > 1 else "")  # noqa: E731
    for index, attack in enumerate(attacks):
        grid = np.full((len(surrogates), len(victims)), np.nan)
        for r in rows:
            if r["attack"] == attack and r["trials"]:
                grid[surrogates.index(r["surrogate"]), victims.index(r["victim"])] = r["successes"] / r["trials"]
        figure.add_trace(go.Heatmap(z=grid, x=[label(v) for v in victims], y=[label(s) for s in surrogates],
                                    zmin=0, zmax=1, colorscale="Viridis", showscale=index == 0,
                                    text=[["" if np.isnan(v) else f"{v:.0%}" for v in row] for row in grid],
                                    texttemplate="%{text}", textfont={"size": 10}),
                         row=index // columns + 1, col=index % columns + 1)
    figure.update_layout(title=f"Attack success rate on the victim (columns), crafted on the surrogate (rows): {budget} "
                               f"budget, {modality}<br><sup>R / V: ResNet18 / VGG frames; c / s: concat / sum fusion; "
                               "W / M: waveform / log-mel audio; ens.: loss averaged over the members</sup>",
                         width=150 + 380 * columns, height=120 + 220 * lines, margin={"l": 130, "t": 110})
    try:
        figure.write_image(str(path))
    except Exception as error:  # kaleido needs a browser; the report stands without the picture
        print(f"{path.name} not written ({error})")


STEP_FRACTIONS = (0.1, 0.125, 0.25)  # the paper's eps / iterations, our eps / 8, and a bolder eps / 4


def _stage_weights(attack: str, best: dict) -> list[dict]:
    """Stage 1: the step size of the baselines, the weights of the new attacks' terms."""
    if attack in ("ifgsm", "mim", "mig", "pam"):
        return [dict(EQUAL_WORK.get(attack, {}), step_fraction=f) for f in STEP_FRACTIONS]
    if attack == "tia":
        return [dict(EQUAL_WORK["tia"], lambda_temporal=w) for w in (1.0, 10.0, 100.0)]
    if attack == "mma":
        return [dict(lambda_misalign=w) for w in (0.1, 1.0, 10.0)]
    if attack == "tma":
        return [dict(EQUAL_WORK["tma"], lambda_temporal=t, lambda_misalign=m) for t, m in ((1.0, 0.1), (10.0, 1.0), (100.0, 10.0))]
    return []


WEIGHT_GRIDS = {"tia": ("lambda_temporal",), "mma": ("lambda_misalign",), "tma": ("lambda_temporal", "lambda_misalign")}


def _stage_edges(attack: str, best: dict) -> list[dict]:
    """Stage 2: where stage 1's best sits at the edge of its grid, one step further out (a weight x or /
    10, a step of eps / 2 or eps / 20), for baselines and new attacks alike."""
    if "step_fraction" in best:
        fraction = best["step_fraction"]
        beyond = {STEP_FRACTIONS[0]: STEP_FRACTIONS[0] / 2, STEP_FRACTIONS[-1]: STEP_FRACTIONS[-1] * 2}.get(fraction)
        return [dict(best, step_fraction=beyond)] if beyond else []
    grid = _stage_weights(attack, {})
    proposals = []
    for name in WEIGHT_GRIDS.get(attack, ()):
        values = sorted({options[name] for options in grid})
        if best.get(name) in (values[0], values[-1]):
            factor = 0.1 if best[name] == values[0] else 10.0
            proposals.append({**best, **{n: round(best[n] * factor, 12) for n in WEIGHT_GRIDS[attack]}})  # 0.01, not 0.010000000000000002
            break  # TMA's weights move together, as its grid does
    return proposals


def _stage_transformations(attack: str, best: dict) -> list[dict]:
    """Stage 3 (TIA, TMA): which transformations, on which modality, drawn together or apart."""
    if attack not in ("tia", "tma"):
        return []
    return [dict(best, synchronous=False), dict(best, transform_modality="visual"), dict(best, transform_modality="audio"),
            dict(best, transforms=["mask"])]


def _stage_copies(attack: str, best: dict) -> list[dict]:
    """Stage 4: how many inputs a step sums over, for every attack that takes several."""
    field = {"mig": "path_points", "tia": "copies", "tma": "copies"}.get(attack)
    if field:
        return [dict(best, **{field: n}) for n in (2, 8)]
    if attack == "pam":
        return [dict(best, paths=1, scales=2), dict(best, paths=4, scales=2)]
    return []


SWEEP_STAGES = (_stage_weights, _stage_edges, _stage_transformations, _stage_copies)
"""Each stage proposes settings from the best so far (the first stage from nothing): the step size or
the terms' weights, one step beyond the grid's edge where the best sits there, then the
transformations (TIA, TMA), then the inputs per step. The effort differs by attack (the report counts
the settings each was given): the baselines get step size and copies (5-6 settings; I-FGSM and MI-FGSM
3-4), the new attacks with copies their weights, transformations and copies (9-10), MMA its weight (3-4)."""
SWEEP_PROTOCOL = ("Chosen on the validation split (the first clip per class), surrogate {surrogate}, at the visible "
                  "budget on both modalities, by the success rate pooled over every victim of another architecture "
                  "(every other victim when none is measured), in four stages, each from the best so far: step size "
                  "(baselines) or the terms' weights (TIA, MMA, TMA); one step further where the best sat at the edge of "
                  "its grid; the transformations (TIA, TMA: scale, mask, blur "
                  "and mix-up on both modalities drawn together, against drawn apart, on the frames only, on the audio "
                  "only, masking only); the inputs per step (2 or 8 against 4). A setting replaces the best only when it "
                  "transfers strictly better.")


def _options_key(options: dict) -> str:
    return ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(options.items()))


def sweep(report: dict, surrogate: str, victims: list[str], dataset, clips: list[int], save, device: str = "cpu",
          batch_size: int = 9, log=print) -> dict:
    """Choose each attack's settings on validation clips, stage by stage (`SWEEP_STAGES`), by transfer
    success; `report["sweep"]` keeps the protocol, every setting tried with its result, and the choice."""
    data = report.setdefault("sweep_data", {})
    attacks = (*BASELINES, *PROPOSED)
    best: dict[str, tuple[float, dict]] = {}
    trials = []
    for stage in SWEEP_STAGES:
        proposals = {}
        for attack in attacks:
            current = best.get(attack, (0.0, {}))[1]
            proposals[attack] = [o for o in stage(attack, current) if _options_key(o) != _options_key(current)]
        tasks = [Task(surrogate, a, *HEADLINE, tuple(sorted(o.items()))) for a, grid in proposals.items() for o in grid]
        run(tasks, victims, dataset, clips, data, lambda _: save(report), device, batch_size, log)
        rows = [r for r in outcomes(data) if r["surrogate"] == surrogate]
        cross = any(r["cross_architecture"] for r in rows)
        for attack, grid in proposals.items():
            for options in grid:
                mine = [r for r in rows if r["attack"] == attack and r["options"] == _options_key(options)
                        and (r["cross_architecture"] if cross else r["victim"] != surrogate)]
                successes, count = pooled(mine)
                trials.append({"attack": attack, "options": options, "successes": successes, "trials": count})
                if count and (attack not in best or successes / count > best[attack][0]):
                    best[attack] = (successes / count, options)
    report["sweep"] = {"protocol": SWEEP_PROTOCOL.format(surrogate=surrogate), "trials": trials,
                       "chosen": {attack: options for attack, (_, options) in best.items()}}
    save(report)
    return report


def default_tasks(report: dict, surrogates: list[str], attacks: tuple[str, ...], budgets: tuple[str, ...],
                  modalities: tuple[str, ...]) -> list[Task]:
    return [Task(s, a, b, m, chosen_options(report, a))
            for s in surrogates for b in budgets for m in modalities for a in attacks]


def main(argv: list[str] | None = None) -> None:
    from ..data.shards import first_per_class
    from ..training.build_zoo import data_splits

    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluation.transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=1, help="test clips per class (the first ones)")
    parser.add_argument("--surrogates", nargs="+", default=None,
                        help="zoo entries or ensemble:a+b+c (default: av-concat and the entry most unlike it)")
    parser.add_argument("--victims", nargs="+", default=None, help="default: every transfer model")
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS))
    parser.add_argument("--budgets", nargs="+", default=list(BUDGETS))
    parser.add_argument("--modalities", nargs="+", default=list(MODALITIES))
    parser.add_argument("--batch-size", type=int, default=9)
    parser.add_argument("--sweep", action="store_true", help="choose each attack's settings on the validation split first")
    parser.add_argument("--out", default=str(REPORT))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    victims = args.victims or transfer_models()
    surrogates = args.surrogates or default_surrogates(victims)
    path = Path(args.out)
    report = json.loads(path.read_text()) if path.is_file() else {}

    def save(current: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, separators=(",", ":")))

    if args.sweep:
        val = first_per_class(data_splits(victims[0])["val"], 1)
        sweep(report, surrogates[0], victims, val.dataset, list(val.indices), save, args.device, args.batch_size)
    dataset = first_per_class(data_splits(victims[0])["test"], args.per_class)
    clips = list(dataset.indices)
    tasks = default_tasks(report, surrogates, tuple(args.attacks), tuple(args.budgets), tuple(args.modalities))
    run(tasks, victims, dataset.dataset, clips, report, save, args.device, args.batch_size)
    report["stamp"] = {"clips": len(clips), "split": "test", "selection": f"the first {args.per_class} per class",
                       "surrogates": surrogates, "victims": victims, "device": args.device,
                       "time": time.strftime("%Y-%m-%d %H:%M")}
    save(report)
    figure(report, path.with_suffix(".png"))
    path.with_suffix(".md").write_text(markdown(report) + "\n")
    print(f"wrote {path}, {path.with_suffix('.md')} and {path.with_suffix('.png')}")


def default_surrogates(victims: list[str]) -> list[str]:
    """av-concat (the paper's base model) and the victim least like it (other backbones in both
    modalities where there is one)."""
    base = "av-concat" if "av-concat" in victims else victims[0]
    others = sorted(victims, key=lambda v: (-sum(a != b for a, b in zip(architecture(v), architecture(base))), v))
    return [base] + [v for v in others[:1] if v != base]


if __name__ == "__main__":
    main()
