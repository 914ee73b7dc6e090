"""Writing a robustness report: JSON (everything), markdown and one CSV per table (the scalar
columns), and the accuracy-against-eps curves as HTML and PNG.

JSON schema: {"stamp": {"command", "code_version", "date", "device", "seconds",
"attack_steps_per_second", "clips_per_class", "data", "splits": {split: clips},
"checkpoints": {name: digest}, "budgets": {...}}, "protocols": {table: note},
"tables": {"table1" | "table2" | "table3" | "localization": [row, ...]},
"curves": [{"split", "series", "eps", "accuracy"}]}. Every row holds "split", "clips" and the
table's columns, accuracies as fractions in [0, 1]; attacked rows also hold "objectives":
{objective: {column: accuracy}}, each objective's own number before the worst case, and
"per_clip": {column: outcomes}, one character per clip ("1" right, "0" wrong: `outcome_bits`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

TITLES = {"strongest": "The strongest attack per model: the per-clip worst case over PGD-10, MIM-10, TMA, every objective and transfer",
          "table1": "Table 1 analogue: av-concat under attack, beside the unimodal models",
          "table2": "Table 2 analogue: the five fusions under FGSM (paper preset)",
          "table3": "Table 3 analogue: defenses under FGSM and MIM (paper preset, worst case over objectives)",
          "localization": "Localization under PGD-10 attacks, scored against ground truth"}


def outcome_bits(flags: Iterable[bool]) -> str:
    """Per-clip outcomes (True: right) as a report stores them, "1" or "0" per clip in clip order."""
    return "".join("1" if flag else "0" for flag in flags)


def outcome_flags(bits: str) -> np.ndarray:
    """A report's per-clip outcomes back as a float array of shape (clips,): 1.0 right, 0.0 wrong."""
    return np.array([flag == "1" for flag in bits], dtype=float)


def _scalar_columns(rows: list[dict]) -> list[str]:
    return [column for column, value in rows[0].items() if not isinstance(value, (dict, list))]


def _cell(row: dict, column: str) -> str:
    """A number in % with its 95 % interval when the row has one."""
    value = row[column]
    if not isinstance(value, float):
        return str(value)
    interval = row.get("intervals", {}).get(column)
    signed = column == "RI"
    text = f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"
    if interval is None:
        return text
    low, high = (f"{100 * bound:+.0f}" if signed else f"{100 * bound:.0f}" for bound in interval)
    return f"{text} [{low}, {high}]"


def _clips(row: dict) -> str:
    """How many clips the row's numbers rest on: one count, or one per column where they differ."""
    clips = row.get("clips", "")
    if not isinstance(clips, dict):
        return str(clips)
    counts = set(clips.values())
    if len(counts) == 1:
        return str(counts.pop())
    common = max(counts, key=list(clips.values()).count)
    return f"{common} (" + ", ".join(f"{column} {n}" for column, n in clips.items() if n != common) + ")"


SECTION_LABELS = {"table1": "Table 1 (its ✓AV and ✗AV / the rest)", "table2": "Table 2", "table3": "Table 3 (defenses)",
                  "strongest": "the strongest attack",
                  "localization": "localization under attack (caption budget / paper preset)",
                  "curves": "accuracy against ε"}
"""How the findings and the Robustness tab name a section beside its clip counts."""


def _run_line(stamp: dict) -> str:
    """Who wrote a report or an update: command, code, date, device, time and attack speed."""
    if "attack_steps_per_second" in stamp:
        speed = f"{stamp['attack_steps_per_second']} attack steps/s, one step = one forward and backward of one clip"
    elif "clips_per_second" in stamp:
        speed = f"{stamp['clips_per_second']} clip evaluations/s"
    else:
        speed = "attack steps not counted"
    note = f"; {stamp['note']}" if stamp.get("note") else ""
    return (f"`{stamp['command']}` at code {stamp['code_version']}, {stamp['date']}, on {stamp['device']} "
            f"({stamp['seconds'] / 60:.1f} min, {speed}{note})")


def section_runs(report: dict) -> dict[str, dict]:
    """For each section the report holds, the stamp of the run that measured it last: the report's
    own stamp or a later `--update` (whose stamp lists its sections)."""
    stamp = report.get("stamp", {})
    runs = {name: stamp for name in [*report.get("tables", {}), *(["curves"] if report.get("curves") else [])]}
    for update in report.get("updates", []):
        runs.update({name: update for name in update["sections"]})
    return runs


def clip_tiers(rows: list[dict], column: str | None = None) -> dict[str, list[int]]:
    """{split: the distinct clip counts its rows rest on, largest first}. A row's `clips` is one
    count or {column: count}; `column` picks that column's count (every column's with None).
    Rows that do not say are left out."""
    tiers: dict[str, set[int]] = {}
    for row in rows:
        clips = row.get("clips")
        counts = [clips] if not isinstance(clips, dict) else list(clips.values()) if column is None else [clips.get(column)]
        tiers.setdefault(row["split"], set()).update(n for n in counts if n is not None)
    return {split: sorted(counts, reverse=True) for split, counts in tiers.items() if counts}


def section_clips(report: dict, section: str) -> dict[str, int | str]:
    """{split: clips} the section's rows rest on, read from the rows themselves: one count, or the
    tiers largest first where its rows or columns differ ("360 / 72" for Table 1's ✓AV and ✗AV
    against the rest, or localization's caption budget against the paper preset). Older reports,
    whose rows do not say, give their run's clips per split."""
    rows = report.get("curves", []) if section == "curves" else report.get("tables", {}).get(section, [])
    tiers = clip_tiers(rows)
    if not tiers:
        return {split: n for split, n in section_runs(report).get(section, {}).get("splits", {}).items()
                if isinstance(n, int)}
    return {split: counts[0] if len(counts) == 1 else " / ".join(map(str, counts)) for split, counts in tiers.items()}


def section_clips_text(report: dict, section: str) -> str:
    """`section_clips` as text, e.g. "test 360 / 72, test-heldout 360 / 72"."""
    return ", ".join(f"{split} {n}" for split, n in section_clips(report, section).items())


def markdown(report: dict) -> str:
    """The report as markdown tables (accuracies in %), each with its protocol."""
    stamp = report["stamp"]
    lines = ["# Robustness report", "",
             f"{_run_line(stamp)}. Data {stamp.get('data', 'AV-Synth (generator 1, bank 1, seed 0)')}; "
             f"clips per class: {stamp['clips_per_class']}; "
             "splits: " + ", ".join(f"{k} {v} clips" for k, v in stamp["splits"].items())
             + ". Accuracies in % with 95 % intervals in brackets (Wilson over clips; Avg, RI and the localization "
               "scores by a bootstrap over clips); the clips column says what each row rests on.", ""]
    for update in report.get("updates", []):
        clips = "; ".join(f"{name} on {section_clips_text(report, name)}" for name in update["sections"])
        lines += [f"Updated by {_run_line(update)}: {clips} clips.", ""]
    for name, rows in report["tables"].items():
        columns = [column for column in _scalar_columns(rows) if column != "clips"]
        lines += [f"## {TITLES[name]}", "", report.get("protocols", {}).get(name, ""), "",
                  "| " + " | ".join([*columns, "clips"]) + " |", "|" + "---|" * (len(columns) + 1)]
        lines += ["| " + " | ".join([*(_cell(row, c) for c in columns), _clips(row)]) + " |" for row in rows]
        lines.append("")
    if report["curves"]:
        lines += ["## Accuracy against eps (PGD-10), Figure 3 analogue", "",
                  "Plotted in `curves.html` / `curves.png`.", ""]
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> list[Path]:
    """robustness.json, robustness.md, one CSV per table, and the curves as HTML and PNG."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "robustness.json", out / "robustness.md"]
    written[0].write_text(json.dumps(report, indent=1, ensure_ascii=False))
    written[1].write_text(markdown(report))
    for name, rows in report["tables"].items():
        path = out / f"{name}.csv"
        columns = _scalar_columns(rows)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    if report["curves"]:
        written += write_curves(report, out)
    return written


def curves_figure(report: dict):
    """Figure 3 analogue: accuracy against eps, one panel per split."""
    from plotly.subplots import make_subplots

    splits = list(dict.fromkeys(curve["split"] for curve in report["curves"]))
    figure = make_subplots(rows=1, cols=len(splits), subplot_titles=splits, shared_yaxes=True)
    for column, split in enumerate(splits, start=1):
        for curve in (c for c in report["curves"] if c["split"] == split):
            dashed = "clean" in curve["series"]
            figure.add_scatter(x=[1000 * e for e in curve["eps"]], y=curve["accuracy"], name=curve["series"],
                               mode="lines" if dashed else "lines+markers", line={"dash": "dash" if dashed else "solid"},
                               legendgroup=curve["series"], showlegend=column == 1, row=1, col=column)
    figure.update_layout(height=420, width=520 * len(splits), title="Accuracy against attack strength (PGD-10)")
    figure.update_xaxes(title_text="ε (×10⁻³, ImageNet-normalised units)")
    figure.update_yaxes(title_text="accuracy", range=[0, 1])
    return figure


def write_curves(report: dict, out: Path) -> list[Path]:
    figure = curves_figure(report)
    html = out / "curves.html"
    figure.write_html(str(html), include_plotlyjs="cdn")
    written = [html]
    try:
        png = out / "curves.png"
        figure.write_image(str(png))
        written.append(png)
    except Exception as error:  # kaleido needs a Chrome; the HTML is the reference figure
        print(f"curves.png not written ({error})")
    return written
