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

from . import map_attacks, masking, robust_training, transfer
from .report import markdown
from ..zoo import describe, entry_digest, list_models
from ..paths import DOCS, REPORTS

DROP = 0.10  # a drop of at least 10 accuracy points counts as "hurts" / "fools"


def _rows(report: dict, table: str, **match) -> list[dict]:
    return [row for row in report["tables"].get(table, []) if all(row.get(k) == v for k, v in match.items())]


def _splits(report: dict) -> list[str]:
    return list(report["stamp"]["splits"])


def _verdict(holds: list[bool]) -> str:
    if holds and all(holds):
        return "reproduced"
    return "partly" if any(holds) else "not reproduced"


def attacks_hurt(report: dict) -> tuple[str, str, str]:
    rule = f"every attack lowers ✗AV at least {DROP:.0%} below ✓AV at the paper preset"
    holds, numbers = [], []
    for split in _splits(report):
        for row in _rows(report, "table1", split=split, budget="paper"):
            holds.append(row["✓AV"] - row["✗AV"] >= DROP)
            numbers.append(f"{split} {row['attack']}: {row['✓AV']:.1%} → {row['✗AV']:.1%}")
    return rule, "; ".join(numbers), _verdict(holds)


def unimodal_crossing(report: dict) -> tuple[str, str, str]:
    rule = "as ε grows, ✗A falls below Unimodal ✓V and ✗V below Unimodal ✓A (PGD curves)"
    holds, numbers = [], []
    for split in _splits(report):
        curves = {c["series"]: c for c in report["curves"] if c["split"] == split}
        for attacked, reference in (("✗A (av-concat, audio attacked)", "Unimodal ✓V (clean)"),
                                    ("✗V (av-concat, visual attacked)", "Unimodal ✓A (clean)")):
            if attacked not in curves:
                continue
            values, level = curves[attacked]["accuracy"], curves[reference]["accuracy"][0]
            below = [e for e, a in zip(curves[attacked]["eps"], values) if a < level]
            holds.append(bool(below))
            where = f"from ε = {below[0]:g}" if below else "never"
            numbers.append(f"{split} {attacked.split(' ')[0]} vs {reference.split(' (')[0]} ({level:.1%}): {where}")
    return rule, "; ".join(numbers), _verdict(holds)


def mim_strongest(report: dict) -> tuple[str, str, str]:
    rule = "MIM gives the lowest accuracy of FGSM, PGD and MIM in each of ✗A, ✗V, ✗AV (ties count)"
    holds, numbers = [], []
    for split in _splits(report):
        for budget in ("paper", "caption"):
            rows = {row["attack"]: row for row in _rows(report, "table1", split=split, budget=budget)}
            if not rows:
                continue
            for column in ("✗A", "✗V", "✗AV"):
                holds.append(rows["MIM"][column] <= min(r[column] for r in rows.values()) + 1e-9)
            numbers.append(f"{split}/{budget} Avg: " + ", ".join(f"{a} {r['Avg']:.1%}" for a, r in rows.items()))
    return rule, "; ".join(numbers), _verdict(holds)


def concat_fusions_most_robust(report: dict) -> tuple[str, str, str]:
    rule = "av-concat and av-gated-concat have the two highest ✗AV among the five fusions (FGSM)"
    holds, numbers = [], []
    for split in _splits(report):
        rows = sorted(_rows(report, "table2", split=split), key=lambda r: -r["✗AV"])
        if not rows:
            continue
        cut = rows[1]["✗AV"]
        top = {r["fusion"] for r in rows if r["✗AV"] >= cut - 1e-9}
        holds.append({"av-concat", "av-gated-concat"} <= top)
        numbers.append(f"{split}: " + ", ".join(f"{r['fusion'].removeprefix('av-')} {r['✗AV']:.1%}" for r in rows))
    return rule, "; ".join(numbers), _verdict(holds)


def full_defense_best_ri(report: dict) -> tuple[str, str, str]:
    rule = "a MinSim + ExFMem variant has the highest RI of all defenses (FGSM and MIM; worst case over objectives)"
    holds, numbers = [], []
    for split in _splits(report):
        for attack in ("FGSM", "MIM"):
            rows = [r for r in _rows(report, "table3", split=split, attack=attack) if r["defense"] != "None"]
            full = [r for r in rows if r["defense"].startswith("MinSim + ExFMem")]
            if not full:
                continue
            best, best_full = max(rows, key=lambda r: r["RI"]), max(full, key=lambda r: r["RI"])
            holds.append(best_full["RI"] >= best["RI"] - 1e-9)
            numbers.append(f"{split}/{attack}: {best_full['defense']} RI {100 * best_full['RI']:+.1f}, "
                           f"best {best['defense']} {100 * best['RI']:+.1f}")
    return rule, "; ".join(numbers), _verdict(holds)


def localization_fooled(report: dict) -> tuple[str, str, str]:
    rule = f"✗A, ✗V and ✗AV each lower av-attention's pointing game at least {DROP:.0%} (caption budget)"
    holds, numbers = [], []
    for split in _splits(report):
        rows = {r["condition"]: r for r in _rows(report, "localization", split=split, model="av-attention", budget="caption")}
        if not rows:
            continue
        clean = rows["✓AV"]["pointing_game"]
        for condition in ("✗A", "✗V", "✗AV"):
            holds.append(clean - rows[condition]["pointing_game"] >= DROP)
        numbers.append(f"{split}: " + ", ".join(f"{c} {r['pointing_game']:.1%}" for c, r in rows.items()))
    return rule, "; ".join(numbers), _verdict(holds)


CLAIMS = (
    ("Attacks hurt: audio-visual models are susceptible to multimodal attacks", attacks_hurt),
    ("With one modality attacked, the AV model falls below the unimodal model of the other modality as ε grows", unimodal_crossing),
    ("MIM is the strongest of the three attacks", mim_strongest),
    ("Concat and Gated-Concat are the most robust fusions under audio-visual attacks", concat_fusions_most_robust),
    ("MinSim + ExFMem has the best RI", full_defense_best_ri),
    ("All attacks fool the sound-source localization", localization_fooled),
)


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


def results_markdown(report: dict, stale: list[str], sections: list[str] = ()) -> str:
    """docs/RESULTS.md from a robustness report, the shipped entries it is out of date for, and the
    sections of the other evaluations that were measured (`SECTIONS`)."""
    lines = ["# Results: the CVPR 2021 findings on avdemo's zoo", ""]
    if stale:
        lines += [f"**Out of date: the report below was measured on other weights than ship for {', '.join(stale)}. "
                  "Run `make evaluate` to measure the zoo in `checkpoints/`.**", ""]
    lines += ["Measured by `python -m avdemo.evaluation` (stamp below) on AV-Synth, whose ground truth lets",
              "localization be scored. Verdicts follow fixed rules (stated per claim) applied to every split;",
              "neither the zoo nor the attacks were tuned toward a verdict. A defended model's attacked accuracy",
              "is its robust accuracy: the per-clip worst case over every objective its defense lists (plain",
              "cross-entropy, plus its training term, BPDA through ExFMem, transfer from the undefended model).", "",
              "## Findings", "", "| claim | rule | measured | verdict |", "|---|---|---|---|"]
    for claim, check in CLAIMS:
        rule, numbers, verdict = check(report)
        lines.append(f"| {claim} | {rule} | {numbers or 'not measured'} | **{verdict}** |")
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
