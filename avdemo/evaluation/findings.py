"""The CVPR 2021 paper's claims, checked against a robustness report: `python -m avdemo.evaluation.findings`
writes `docs/RESULTS.md` from `reports/robustness.json`.

Each claim has a fixed rule, stated beside its verdict, applied the same way to every split;
"reproduced" needs the rule to hold on every split, "partly" on some splits or some of its
cases, "not reproduced" on none. Rules are never tuned to a result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import map_attacks, masking, robust_training, strongest, transfer
from ..defenses import BASE_MODEL, DEFENSES
from .intervals import Verdict, bootstrap_interval, combined_verdict, interval_verdict, mean_interval, ranking_verdict
from .report import SECTION_LABELS, markdown, outcome_flags, section_clips, section_runs
from .tables import per_clip_score
from ..zoo import describe, entry_digest, list_models
from ..paths import DOCS, REPORTS

DROP = 0.10  # a drop of at least 10 accuracy points counts as "hurts" / "fools"


def _rows(report: dict, table: str, **match) -> list[dict]:
    """The table's rows that match, of those that keep per-clip outcomes (older reports' rows
    lack them and cannot be judged by these rules)."""
    return [row for row in report["tables"].get(table, []) if "per_clip" in row
            and all(row.get(k) == v for k, v in match.items())]


def cvpr_defenses() -> dict[str, str]:
    """The CVPR 2021 defenses, entry -> name: every registered defense but the later papers' training procedures."""
    return {d.entry: d.name for d in DEFENSES.values() if d.kind != "training procedure"}


def _splits(report: dict) -> list[str]:
    return list(report["stamp"]["splits"])


def _bits(row: dict, column: str) -> np.ndarray:
    """A column's per-clip outcomes (1 right, 0 wrong) over the split's first clips."""
    return outcome_flags(row["per_clip"][column])


def _paired(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per-clip differences first - second on the clips both rest on (the first ones: tiers are prefixes)."""
    shared = min(len(first), len(second))
    return first[:shared] - second[:shared]


def _judge(difference: np.ndarray, threshold: float) -> tuple[str, Verdict]:
    """(numbers, verdict) of "the mean per-clip difference exceeds `threshold`", by its bootstrap interval."""
    estimate, (low, high) = float(difference.mean()), mean_interval(difference)
    numbers = f"{100 * estimate:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] pts ({len(difference)} clips)"
    return numbers, interval_verdict(estimate, low, high, len(difference), threshold)


def _pct(value: float, interval) -> str:
    return f"{100 * value:.1f} % [{100 * interval[0]:.0f}, {100 * interval[1]:.0f}]"


def attacks_hurt(report: dict) -> tuple[str, str, str]:
    rule = (f"each attack lowers ✗AV at least {DROP:.0%} below ✓AV at the paper preset: the paired drop's 95 % bootstrap "
            "interval over clips lies above 10 points")
    verdicts, numbers = {}, []
    for split in _splits(report):
        for row in _rows(report, "table1", split=split, budget="paper"):
            text, verdicts[f"{split} {row['attack']}"] = _judge(_paired(_bits(row, "✓AV"), _bits(row, "✗AV")), DROP)
            numbers.append(f"{split} {row['attack']}: {row['✓AV']:.1%} → {row['✗AV']:.1%}, drop {text}")
    return rule, "; ".join(numbers), combined_verdict(verdicts)


def unimodal_crossing(report: dict) -> tuple[str, str, str]:
    rule = ("at the largest ε of the PGD curve, ✗A lies below the clean Unimodal ✓V and ✗V below the clean Unimodal ✓A: "
            "the paired difference's bootstrap interval over clips lies above 0")
    verdicts, numbers = {}, []
    for split in _splits(report):
        curves = {c["series"]: c for c in report["curves"] if c["split"] == split}
        for attacked, reference in (("✗A (av-concat, audio attacked)", "Unimodal ✓V (clean)"),
                                    ("✗V (av-concat, visual attacked)", "Unimodal ✓A (clean)")):
            if attacked not in curves or "per_clip" not in curves[attacked]:
                continue
            last = curves[attacked]
            difference = _paired(outcome_flags(curves[reference]["per_clip"][-1]), outcome_flags(last["per_clip"][-1]))
            case = f"{split} {attacked.split(' ')[0]}"
            text, verdicts[case] = _judge(difference, 0.0)
            numbers.append(f"{case} at ε = {last['eps'][-1]:g}: {last['accuracy'][-1]:.1%} against "
                           f"{reference.split(' (')[0]} {curves[reference]['accuracy'][0]:.1%}, gap {text}")
    return rule, "; ".join(numbers), combined_verdict(verdicts)


def mim_strongest(report: dict) -> tuple[str, str, str]:
    rule = ("in ✗AV, MIM's accuracy lies below the stronger of FGSM and PGD (by point estimate): the paired difference's "
            "bootstrap interval over clips lies above 0")
    verdicts, numbers = {}, []
    for split in _splits(report):
        for budget in ("paper", "caption"):
            rows = {row["attack"]: row for row in _rows(report, "table1", split=split, budget=budget)}
            if "MIM" not in rows:
                continue
            rival = min(("FGSM", "PGD"), key=lambda attack: rows[attack]["✗AV"])
            case = f"{split}/{budget}"
            text, verdicts[case] = _judge(_paired(_bits(rows[rival], "✗AV"), _bits(rows["MIM"], "✗AV")), 0.0)
            numbers.append(f"{case} ✗AV: " + ", ".join(f"{a} {r['✗AV']:.1%}" for a, r in rows.items())
                           + f"; {rival} - MIM {text}")
    return rule, "; ".join(numbers), combined_verdict(verdicts)


def concat_fusions_most_robust(report: dict) -> tuple[str, str, str]:
    leaders = ("av-concat", "av-gated-concat")
    rule = ("ranking by paired bootstrap over clips (FGSM, ✗AV): av-concat and av-gated-concat each beat each other "
            "fusion (the difference's interval lies above 0); not reproduced when another fusion beats one of them")
    verdicts, numbers = {}, []
    for split in _splits(report):
        rows = {row["fusion"]: row for row in _rows(report, "table2", split=split)}
        if not set(leaders) <= set(rows):
            continue
        for leader in leaders:
            for other in (name for name in rows if name not in leaders):
                text, verdicts[f"{split} {leader} vs {other}"] = _judge(
                    _paired(_bits(rows[leader], "✗AV"), _bits(rows[other], "✗AV")), 0.0)
        numbers.append(f"{split}: " + ", ".join(f"{name.removeprefix('av-')} {_pct(r['✗AV'], r['intervals']['✗AV'])}"
                                                for name, r in sorted(rows.items(), key=lambda item: -item[1]["✗AV"])))
    return rule, "; ".join(numbers), ranking_verdict(verdicts)


def full_defense_best_ri(report: dict) -> tuple[str, str, str]:
    rule = ("ranking by paired bootstrap over clips of RI (FGSM and MIM; worst case over objectives): the best MinSim + "
            "ExFMem variant's RI exceeds every other CVPR 2021 defense's (the difference's interval lies above 0; the "
            "training procedures of the later papers are judged in their own claims)")
    cvpr = set(cvpr_defenses().values())
    verdicts, numbers = {}, []
    for split in _splits(report):
        for attack in ("FGSM", "MIM"):
            rows = [r for r in _rows(report, "table3", split=split, attack=attack) if r["defense"] in cvpr]
            full = [r for r in rows if r["defense"].startswith("MinSim + ExFMem")]
            if not full:
                continue
            best_full = max(full, key=lambda r: r["RI"])
            for other in (r for r in rows if r is not best_full):
                _, verdicts[f"{split}/{attack} vs {other['defense']}"] = _judge(
                    _paired(per_clip_score(best_full), per_clip_score(other)), 0.0)
            best = max(rows, key=lambda r: r["RI"])
            numbers.append(f"{split}/{attack}: {best_full['defense']} RI {100 * best_full['RI']:+.1f} "
                           f"[{100 * best_full['intervals']['RI'][0]:+.1f}, {100 * best_full['intervals']['RI'][1]:+.1f}], "
                           f"best {best['defense']} {100 * best['RI']:+.1f}")
    return rule, "; ".join(numbers), ranking_verdict(verdicts)


def localization_fooled(report: dict) -> tuple[str, str, str]:
    rule = (f"✗A, ✗V and ✗AV each lower av-attention's pointing game at least {DROP:.0%} (caption budget): the paired "
            "per-clip drop's bootstrap interval lies above 10 points")
    verdicts, numbers = {}, []
    for split in _splits(report):
        rows = {r["condition"]: r for r in _rows(report, "localization", split=split, model="av-attention", budget="caption")}
        if "✓AV" not in rows or "per_clip" not in rows["✓AV"]:
            continue
        clean = np.array(rows["✓AV"]["per_clip"]["pointing_game"])
        for condition in ("✗A", "✗V", "✗AV"):
            text, verdicts[f"{split} {condition}"] = _judge(
                _paired(clean, np.array(rows[condition]["per_clip"]["pointing_game"])), DROP)
            numbers.append(f"{split} {condition}: {rows['✓AV']['pointing_game']:.1%} → {rows[condition]['pointing_game']:.1%}, "
                           f"drop {text}")
    return rule, "; ".join(numbers), combined_verdict(verdicts)


def defenses_beat_base_under_strongest(report: dict) -> tuple[str, str, str]:
    rule = ("under the strongest attack (per clip, over PGD-10, MIM-10, TMA, every objective, transfer), each CVPR 2021 "
            "defense keeps more clips than the undefended av-concat: paired bootstrap of the difference above 0")
    verdicts, numbers = {}, []
    cvpr = cvpr_defenses()
    for split in _splits(report):
        for budget in dict.fromkeys(r["budget"] for r in _rows(report, "strongest", split=split)):
            rows = {r["model"]: r for r in _rows(report, "strongest", split=split, budget=budget)}
            if BASE_MODEL not in rows:
                continue
            base = _bits(rows[BASE_MODEL], "strongest")
            for entry in (e for e in cvpr if e in rows):
                text, verdicts[f"{split}/{budget} {cvpr[entry]}"] = _judge(_paired(_bits(rows[entry], "strongest"), base), 0.0)
            numbers.append(f"{split}/{budget}: av-concat {_pct(rows[BASE_MODEL]['strongest'], rows[BASE_MODEL]['intervals']['strongest'])}, "
                           + ", ".join(f"{cvpr[e]} {_pct(rows[e]['strongest'], rows[e]['intervals']['strongest'])}"
                                       for e in cvpr if e in rows))
    return rule, "; ".join(numbers), ranking_verdict(verdicts)


def heldout_gap(report: dict) -> tuple[str, str, str]:
    rule = ("AV-Synth's held-out split (sprites and recordings never seen in training) costs av-concat clean accuracy: "
            "the test minus held-out ✓AV difference's interval (unpaired: bootstrap over each split's clips) lies above 0")
    rows = {r["split"]: r for r in _rows(report, "table1", budget="paper", attack="PGD")}
    if not {"test", "test-heldout"} <= set(rows):
        return rule, "", "not measured"
    test, heldout = _bits(rows["test"], "✓AV"), _bits(rows["test-heldout"], "✓AV")
    low, high = bootstrap_interval(lambda a, b: a.mean() - b.mean(), *_stacked(test, heldout))
    estimate = float(test.mean() - heldout.mean())
    numbers = (f"test {_pct(test.mean(), rows['test']['intervals']['✓AV'])}, held-out "
               f"{_pct(heldout.mean(), rows['test-heldout']['intervals']['✓AV'])}: gap {100 * estimate:+.1f} "
               f"[{100 * low:+.1f}, {100 * high:+.1f}] pts")
    return rule, numbers, str(interval_verdict(estimate, low, high, min(len(test), len(heldout)), 0.0))


def _stacked(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unpaired samples of equal size as two per-clip arrays (resampled jointly, which for
    independent clips of equal count is the same as resampling each)."""
    shared = min(len(first), len(second))
    return first[:shared], second[:shared]


CLAIMS = (
    ("Attacks hurt: audio-visual models are susceptible to multimodal attacks", attacks_hurt),
    ("With one modality attacked, the AV model falls below the unimodal model of the other modality as ε grows", unimodal_crossing),
    ("MIM is the strongest of the three attacks", mim_strongest),
    ("Concat and Gated-Concat are the most robust fusions under audio-visual attacks", concat_fusions_most_robust),
    ("MinSim + ExFMem has the best RI", full_defense_best_ri),
    ("All attacks fool the sound-source localization", localization_fooled),
)
"""The CVPR 2021 paper's six claims, from the robustness report."""

EXTRAS = (
    ("The CVPR 2021 defenses beat the undefended model under the strongest attack", defenses_beat_base_under_strongest),
    ("Held-out material costs clean accuracy", heldout_gap),
)
"""What AV-Synth lets us measure that the papers could not, from the robustness report."""


def _normalised(verdict: str) -> str:
    """The other reports' verdict words in this page's: holds -> reproduced, does not hold -> not reproduced."""
    verdict = verdict.replace("does not hold", "not reproduced")
    return verdict.replace("holds", "reproduced")


def other_claims() -> list[tuple[str, str, str, str, str]]:
    """(paper, claim, rule, measured, verdict) of the other evaluations' findings, from their
    reports in `reports/` (each states its own clips)."""
    found = []
    if (REPORTS / "masking.json").is_file():
        report = json.loads((REPORTS / "masking.json").read_text())
        clips = report.get("stamp", {}).get("clips", "?")
        found += [("ICLR 2025", item["claim"], item["rule"], f"{item['measured']} ({clips} clips)", item["verdict"])
                  for item in masking.findings(report)]
    if (REPORTS / "transfer.json").is_file():
        report = json.loads((REPORTS / "transfer.json").read_text())
        clips = report.get("stamp", {}).get("clips", "?")
        found += [("ICLR 2025", claim, rule, f"{numbers} ({clips} clips per pair)", verdict)
                  for claim, rule, numbers, verdict in transfer.findings(transfer.matrix_rows(report))]
    if (REPORTS / "robust_training.json").is_file():
        report = json.loads((REPORTS / "robust_training.json").read_text())
        for item in report.get("verdicts", []):
            paper = "ICASSP 2022" if any(word in item["claim"] for word in ("ixup", "unimodal", "κ", "kappa", "convex")) else "ICLR 2025"
            found.append((paper, item["claim"], item["rule"], item["numbers"], item["verdict"]))
    if (REPORTS / "map_attacks.json").is_file():
        report = json.loads((REPORTS / "map_attacks.json").read_text())
        found += [("AV-Synth", claim, *check(report)) for claim, check in map_attacks.FINDINGS]
    return [(paper, claim, rule, measured, _normalised(verdict)) for paper, claim, rule, measured, verdict in found]


def claims_table(report: dict) -> list[str]:
    """Every claim of the three papers and the AV-Synth extras: one table, each with its rule,
    our numbers with intervals and clip counts, and the verdict."""
    lines = ["| paper | claim | rule | measured | verdict |", "|---|---|---|---|---|"]
    for paper, claims in (("CVPR 2021", CLAIMS), ("AV-Synth", EXTRAS)):
        for claim, check in claims:
            rule, numbers, verdict = check(report)
            lines.append(f"| {paper} | {claim} | {rule} | {numbers or 'not measured'} | **{verdict}** |")
    lines += [f"| {paper} | {claim} | {rule} | {measured} | **{verdict}** |" for paper, claim, rule, measured, verdict
              in other_claims()]
    return lines


def zoo_table(cards: dict[str, dict]) -> str:
    """One row per zoo entry from its card: T, accuracies, robust accuracy at both named
    budgets, pointing and distractor peaks in and out of distribution, training cost."""
    rows = ["| model | T | val | test | held-out test | robust PGD-10 ✗AV, paper / visible budget (clips) | "
            "pointing, test / held-out | distractor peak, test / held-out | map | trained on | minutes |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, card in cards.items():
        metrics, training, following = card.get("metrics", {}), card.get("training", {}), card.get("sound_following", {})
        cell = lambda key: f"{metrics[key]:.1%}" if key in metrics else "–"  # noqa: E731
        per_split = lambda key: " / ".join(  # noqa: E731
            f"{following[split][key]:.1%}" if key in following.get(split, {}) else "–" for split in ("test", "test-heldout"))
        clips = {entry.get("clips") for entry in card.get("robustness", {}).values() if isinstance(entry, dict)}
        robust = (f"{cell('robust_pgd_paper_both_accuracy')} / {cell('robust_pgd_visible_both_accuracy')}"
                  + (f" ({', '.join(str(c) for c in sorted(clips - {None}))})" if clips - {None} else ""))
        seconds = training.get("train_seconds") or training.get("memory_seconds")
        minutes = f"{seconds / 60:.1f}" if seconds else "–"
        rows.append(f"| {name} | {card.get('data', {}).get('frames', '–')} | {cell('val_accuracy')} | {cell('test_accuracy')} | "
                    f"{cell('test_heldout_accuracy')} | {robust} | {per_split('pointing')} | {per_split('distractor_peak')} | "
                    f"{(card.get('map') or {}).get('kind', '–')} | {training.get('hardware', '–')} | {minutes} |")
    return "\n".join(rows)


def fusions_markdown(cards: dict[str, dict]) -> str:
    """How the fusions of Table 2 differ and what they share, as their cards record it."""
    fusions = {name: card for name, card in cards.items() if card.get("role") == "fusion"}
    if not fusions:
        return "No fusion entries in the zoo."
    lines = [f"Table 2 compares {len(fusions)} fusions: "
             + "; ".join(f"**{name}**, {card.get('description', '')}" for name, card in fusions.items()) + "."]
    differences = {name: card["comparison"]["differs_in"] for name, card in fusions.items() if card.get("comparison")}
    bases = {card["comparison"]["base"] for card in fusions.values() if card.get("comparison")}
    if differences:
        shown = "; ".join(f"{name}: {', '.join(f'{k} = {v}' for k, v in diff.items()) or 'nothing'}"
                          for name, diff in differences.items())
        lines.append(f"The others are trained on the recipe of {', '.join(sorted(bases))} and differ from it only in: {shown}.")
    missing = sorted(set(fusions) - set(differences) - bases)
    if missing:
        lines.append(f"The cards of {', '.join(missing)} do not record how their recipe compares, so what the fusions "
                     "share is not stated here.")
        return " ".join(lines)
    base = cards[next(iter(bases))] if bases else next(iter(fusions.values()))
    recipe, data = base.get("training", {}).get("recipe", {}), base.get("data", {})
    lines.append(f"They share everything else: T = {data.get('frames')} segments, the same AV-Synth data (generator "
                 f"{data.get('generator', '–')}, bank {data.get('bank_version', '–')}), initialisation from "
                 f"{recipe.get('init_audio') or 'scratch'} (audio) and {recipe.get('init_visual') or 'scratch'} (visual), "
                 f"{recipe.get('epochs')} epochs with the same schedule and augmentation.")
    maps = {(card.get("map") or {}).get("kind") for card in fusions.values()}
    if maps == {"correspondence"}:
        terms = (base.get("map") or {}).get("trained_with", {})
        lines.append("Every fusion also carries the same cell-level audio-visual correspondence head, trained with the "
                     f"same contrastive (weight {terms.get('contrastive_weight')}) and mosaic (weight "
                     f"{terms.get('mosaic_weight')}) terms at τ = {terms.get('temperature')}; it draws each fusion's map. "
                     "These terms shape the audio and visual features every fusion combines, so Table 2 compares fusion "
                     "layers over features also trained to localize, not the paper's cross-entropy-only training.")
    else:
        lines.append("Their maps are of different kinds: " + ", ".join(
            f"{name} {(card.get('map') or {}).get('kind', 'none')}" for name, card in fusions.items()) + ".")
    return " ".join(lines)


def stale_entries(report: dict, shipped: dict[str, str]) -> list[str]:
    """The shipped entries (name -> entry digest) some part of the report was not measured on:
    absent from the run's stamp or from an update, or measured there with other weights."""
    records = [report["stamp"], *report.get("updates", [])]
    return sorted(name for name, digest in shipped.items()
                  if any(record.get("checkpoints", {}).get(name) != digest for record in records))


SECTIONS = {"map_attacks.json": map_attacks.markdown, "masking.json": masking.markdown,
            "transfer.json": transfer.markdown, "robust_training.json": robust_training.section}
"""The other evaluations' reports in `reports/` -> their section of docs/RESULTS.md (with their own findings)."""


def strongest_markdown(report: dict) -> str:
    """The yardstick table: per model and budget, clean, PGD-10 and strongest-attack accuracy with intervals."""
    rows = report["tables"].get("strongest", [])
    if not rows:
        return "Not measured in this report."
    lines = [strongest.__doc__.split("\n\n")[0].replace("\n", " "), "",
             "| split | budget | model | role | clean | PGD-10 | strongest | clips first broken by | clips |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [_pct(row[c], row["intervals"][c]) for c in ("clean", "PGD-10", "strongest")]
        lines.append(f"| {row['split']} | {row['budget']} | {row['model']} | {row.get('role') or '–'} | " + " | ".join(cells)
                     + " | " + ", ".join(f"{k} {v}" for k, v in row["broken_first_by"].items()) + f" | {row['clips']} |")
    return "\n".join(lines)


def results_markdown(report: dict, stale: list[str], sections: list[str] = ()) -> str:
    """docs/RESULTS.md from a robustness report, the shipped entries it is out of date for, and the
    sections of the other evaluations that were measured (`SECTIONS`)."""
    lines = ["# Results: the claims of the three papers on avdemo's zoo", ""]
    if stale:
        lines += [f"**Out of date: the report below was measured on other weights than ship for {', '.join(stale)}. "
                  "Run `make evaluate` to measure the zoo in `checkpoints/`.**", ""]
    stamp = report["stamp"]
    lines += ["Measured by `python -m avdemo.evaluation` and the other evaluations (each section names its command,",
              "machine and clips) on AV-Synth, whose ground truth lets localization be scored. Every number carries a",
              "95 % interval: Wilson for a share of clips; a bootstrap over clips (2000 resamples) for anything",
              "measured per frame and for paired differences (RI, \"A beats B\", drops), since the frames of one",
              "clip are not independent. A verdict follows its fixed rule from the interval: **reproduced** only when",
              "the interval supports the claim, **not reproduced** when it contradicts it, **inconclusive at n clips**",
              "otherwise, with about how many clips would settle it if the estimate held. A ranking claim states its",
              "rule (a paired bootstrap over clips). A defended model's attacked accuracy is its robust accuracy: the",
              "per-clip worst case over every objective its defense lists (plain cross-entropy, its training term,",
              "BPDA through ExFMem, transfer from the undefended model); the strongest-attack table adds MIM and TMA.",
              "Neither the zoo nor the attacks were tuned toward a verdict.", "",
              f"Robustness report on {stamp['device']} (`reports/robustness.md` says which run measured which "
              "section); clips per split: " + "; ".join(
                  f"{SECTION_LABELS[name]} " + " + ".join(str(n) for n in section_clips(report, name).values())
                  for name in section_runs(report)) + ".", "",
              "## All claims", "", *claims_table(report), "",
              "## The strongest attack: the number a defense is judged by", "", strongest_markdown(report)]
    for section in sections:
        lines += ["", section]
    cards = {name: describe(name) for name in list_models()}
    lines += ["", "## The zoo", "", zoo_table(cards), "", "## How the fusions differ and what they share", "",
              fusions_markdown(cards), "", markdown(report).replace("# Robustness report", "## Tables", 1)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluation.findings", description=__doc__)
    parser.add_argument("--report", type=Path, default=REPORTS / "robustness.json")
    parser.add_argument("--out", type=Path, default=DOCS / "RESULTS.md")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(args.report.read_text())
    # The backbone variants serve the transfer evaluation only: the robustness report never measures them.
    shipped = {name: entry_digest(name) for name in list_models() if describe(name).get("role") != "backbone"}
    stale = stale_entries(report, shipped)
    sections = [render(json.loads((REPORTS / file).read_text())) for file, render in SECTIONS.items()
                if (REPORTS / file).is_file()]
    args.out.write_text(results_markdown(report, stale, sections))
    print(f"wrote {args.out}" + (f" (out of date for {len(stale)} entries: {', '.join(stale)})" if stale else ""))


if __name__ == "__main__":
    main()
