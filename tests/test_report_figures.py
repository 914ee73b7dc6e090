"""The Robustness tab's evaluation figures (`avdemo.lab.report_figures`) on hand-made reports in
the formats of `reports/robustness.json` (with and without intervals) and `reports/transfer.json`,
and the page's handler that reads them: no model run, no browser."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from plotly.colors import hex_to_rgb

from avdemo.evaluation import transfer
from avdemo.evaluation.intervals import wilson_interval
from avdemo.lab import report_figures, ui
from avdemo.lab.report_figures import (accuracy_vs_eps_figure, defense_figure, figures_note, localization_figure,
                                       transfer_heatmap)

EPS = [0.0, 0.003, 0.006]
CLIPS = {"test": 360, "test-heldout": 72}


def curve(split: str, series: str, accuracy: list[float], new_format: bool = True) -> dict:
    row = {"split": split, "series": series, "eps": EPS, "accuracy": accuracy}
    if new_format:
        row.update(interval=[[max(0.0, a - 0.1), min(1.0, a + 0.05)] for a in accuracy], clips=CLIPS[split])
    return row


def robustness(new_format: bool = True) -> dict:
    """A small robustness report: curves on two splits, Table 3, the strongest attack (new
    format only: older reports lack it), localization."""
    curves = [curve(split, series, accuracy, new_format) for split in CLIPS
              for series, accuracy in (("✗AV (av-concat, both attacked)", [0.9, 0.6, 0.3]),
                                       ("Unimodal ✓A (clean)", [0.8, 0.8, 0.8]))]
    table3 = []
    for attack, gain in (("FGSM", 0.1), ("MIM", -0.05)):
        for defense, model, ri in (("None", "av-concat", 0.0), ("ExFMem", "av-concat-exfmem", gain),
                                   ("Unimodal A", "audio-only", -0.2)):
            row = {"split": "test", "attack": attack, "defense": defense, "model": model, "RI": ri, "✓AV": 0.9,
                   "Avg": 0.5, "clips": 72}
            if new_format:
                row.update(intervals={"RI": [ri - 0.08, ri + 0.06], "Avg": [0.4, 0.6]},
                           clips={"✓AV": 80, "RI": 72, "Avg": 70})
            table3.append(row)
    localization = [
        {"split": split, "budget": budget, "model": "av-concat", "condition": condition, "pointing_game": value,
         "clips": 360 if budget == "caption" else 72,
         **({"intervals": {"pointing_game": (value - 0.1, value + 0.1)}} if new_format else {})}
        for split in CLIPS for budget in ("paper", "caption")
        for condition, value in (("✓AV", 0.9), ("✗A", 0.4), ("✗V", 0.7), ("✗AV", 0.2))]
    tables = {"table3": table3, "localization": localization}
    if new_format:
        tables["strongest"] = [
            {"split": "test", "budget": budget, "model": model, "role": "fusion", "clean": 0.9, "strongest": value,
             "intervals": {"clean": (0.85, 0.93), "PGD-10": (0.1, 0.3),
                           "strongest": wilson_interval(round(value * 360), 360)},  # a tuple, as strongest.py writes
             "clips": 360}
            for budget in ("paper", "visible")
            for model, value in (("av-concat", 0.25), ("av-sum", 0.1), ("audio-only", 0.05))]
    splits = {split: {"key": n, "other": 72} for split, n in CLIPS.items()} if new_format else {"test": 36}
    return {"stamp": {"command": "python -m avdemo.evaluation --per-class 20", "date": "2026-12-01T10:00:00+00:00",
                      "code_version": "0.2.0+abc1234", "splits": splits},
            "tables": tables, "curves": curves}


def test_each_curve_has_its_line_and_a_band_between_its_interval_bounds():
    report = robustness()
    figure = accuracy_vs_eps_figure(report)
    bands = [trace for trace in figure.data if trace.fill == "toself"]
    lines = [trace for trace in figure.data if trace.fill != "toself"]
    assert len(bands) == len(lines) == len(report["curves"])
    for source, band, line in zip(report["curves"], bands, lines):
        eps = [1000 * e for e in EPS]
        assert list(line.x) == pytest.approx(eps) and list(line.y) == pytest.approx(source["accuracy"])
        assert list(band.x) == pytest.approx(eps + eps[::-1])
        lows, highs = [low for low, _ in source["interval"]], [high for _, high in source["interval"]]
        assert list(band.y) == pytest.approx(lows + highs[::-1])
        red, green, blue = hex_to_rgb(line.line.color)
        assert band.fillcolor.startswith(f"rgba({red}, {green}, {blue}, ")  # the line's colour, translucent
        assert band.legendgroup == line.legendgroup == source["series"]
        assert line.line.dash == ("dash" if "clean" in source["series"] else "solid")
        assert band.xaxis == line.xaxis == ("x" if source["split"] == "test" else "x2")  # one panel per split
    assert "reports/robustness.json" in figure.layout.title.text
    assert "test 360 clips / test-heldout 72 clips" in figure.layout.title.text
    assert figure.layout.yaxis.range == (0, 1)


def test_curves_without_intervals_are_lines_only_with_clips_unknown():
    figure = accuracy_vs_eps_figure(robustness(new_format=False))
    assert len(figure.data) == 4 and not [trace for trace in figure.data if trace.fill == "toself"]
    assert "clips unknown" in figure.layout.title.text


def _transfer_row(attack: str, surrogate: str, victim: str, successes: int, trials: int,
                  budget: str = "visible") -> dict:
    """One row as `transfer.matrix_rows` gives it."""
    return {"surrogate": surrogate, "attack": attack, "options": "", "budget": budget, "modality": "both",
            "victim": victim, "cross_architecture": False, "trials": trials, "successes": successes,
            "succeeded_clips": [], "eligible_clips": [], "cosine": None}


TRANSFER = {"stamp": {"clips": 18, "split": "test", "selection": "the first clip per class",
                      "time": "2026-12-01 09:00"}}


def test_the_heatmap_shows_each_success_rate_with_its_count_and_wilson_interval(monkeypatch):
    rows = [_transfer_row("tma", "av-concat", "av-concat", 8, 9), _transfer_row("tma", "av-concat", "av-sum", 3, 9),
            _transfer_row("tma", "av-sum", "av-sum", 6, 8),  # av-sum -> av-concat not measured
            _transfer_row("fgsm", "av-concat", "av-sum", 1, 9), _transfer_row("fgsm", "av-sum", "av-concat", 2, 7),
            _transfer_row("tma", "av-concat", "av-sum", 0, 9, budget="caption")]  # another budget: not drawn
    monkeypatch.setattr(transfer, "matrix_rows", lambda report: rows)
    figure = transfer_heatmap(TRANSFER)
    assert [trace.name for trace in figure.data] == ["fgsm", "tma"]  # in the report's attack order
    assert [trace.name for trace in figure.data if trace.visible] == ["tma"]  # the proposed attack first
    tma = figure.data[1]
    assert list(tma.y) == ["av-concat (RcW)", "av-sum (RsW)"] and list(tma.x) == ["av-concat (RcW)", "av-sum (RsW)"]
    assert [list(line) for line in tma.z] == [[8 / 9, 3 / 9], [None, 6 / 8]]
    low, high = wilson_interval(3, 9)
    assert "3/9 clips fooled" in tma.hovertext[0][1] and f"{low:.0%}–{high:.0%}" in tma.hovertext[0][1]
    assert "not measured" in tma.hovertext[1][0]
    assert figure.layout.yaxis.autorange == "reversed"  # the first surrogate on top, as in a table
    assert [list(line) for line in figure.data[0].z] == [[None, 1 / 9], [2 / 7, None]]
    buttons = figure.layout.updatemenus[0].buttons
    assert [button.label for button in buttons] == ["FGSM", "TMA"]
    assert buttons[0].args[0]["visible"] == [True, False] and figure.layout.updatemenus[0].active == 1
    assert "reports/transfer.json" in figure.layout.title.text and "test 18 clips" in figure.layout.title.text
    assert "visible budget, both" in figure.layout.title.text


def test_without_tma_or_the_headline_budget_the_heatmap_shows_what_was_measured(monkeypatch):
    monkeypatch.setattr(transfer, "matrix_rows", lambda report: [
        _transfer_row("mim", "av-concat", "av-sum", 4, 9, budget="caption"),
        _transfer_row("fgsm", "av-concat", "av-sum", 2, 9, budget="caption")])
    figure = transfer_heatmap({})
    assert [trace.name for trace in figure.data if trace.visible] == ["fgsm"]
    assert "caption budget" in figure.layout.title.text and "clips unknown" in figure.layout.title.text
    monkeypatch.setattr(transfer, "matrix_rows", lambda report: [_transfer_row("fgsm", "av-concat", "av-sum", 0, 0)])
    assert transfer_heatmap({}) is None  # no trials: nothing measured


def test_the_heatmap_of_the_shipped_transfer_report_matches_its_rows():
    path = Path(__file__).resolve().parents[1] / "reports" / "transfer.json"
    report = json.loads(path.read_text())
    figure = transfer_heatmap(report)
    shown = next(trace for trace in figure.data if trace.visible)
    rows = [row for row in transfer.matrix_rows(report) if (row["budget"], row["modality"]) == transfer.HEADLINE
            and row["attack"] == shown.name and row["trials"]]
    assert shown.name == "tma" and rows
    labels = {report_figures._model_label(name): name for row in rows for name in (row["surrogate"], row["victim"])}
    for y, line in zip(shown.y, shown.z):
        for x, rate in zip(shown.x, line):
            successes, trials = transfer.pooled(rows, surrogate=labels[y], victim=labels[x])
            assert rate == (pytest.approx(successes / trials) if trials else None)
    assert sum(rate is not None for line in shown.z for rate in line) == len(rows)
    assert f"test {report['stamp']['clips']} clips" in figure.layout.title.text


def test_defense_bars_carry_their_intervals_as_error_bars_in_the_reports_order():
    report = robustness()
    figure = defense_figure(report)
    assert [annotation.text for annotation in figure.layout.annotations] == [
        "relative improvement RI per defense (FGSM, MIM)", "robust accuracy under the strongest attack"]
    left = [trace for trace in figure.data if trace.xaxis == "x"]
    right = [trace for trace in figure.data if trace.xaxis == "x2"]
    assert [trace.name for trace in left] == ["FGSM", "MIM"] and [trace.name for trace in right] == ["paper", "visible"]
    for trace, table, key in [*((t, "table3", "attack") for t in left), *((t, "strongest", "budget") for t in right)]:
        column = "RI" if table == "table3" else "strongest"
        source = [row for row in report["tables"][table] if row[key] == trace.name]
        assert list(trace.x) == pytest.approx([row[column] for row in source])
        assert list(trace.error_x.array) == pytest.approx([row["intervals"][column][1] - row[column] for row in source])
        assert list(trace.error_x.arrayminus) == pytest.approx([row[column] - row["intervals"][column][0]
                                                                for row in source])
    assert list(figure.layout.yaxis.categoryarray) == ["None", "ExFMem", "Unimodal A"]
    assert list(figure.layout.yaxis2.categoryarray) == ["av-concat", "av-sum", "audio-only"]
    assert figure.layout.yaxis.autorange == figure.layout.yaxis2.autorange == "reversed"  # the first listed on top
    assert left[0].marker.color != left[1].marker.color  # one colour per attack
    assert not {trace.marker.color for trace in left} & {trace.marker.color for trace in right}  # one shared legend
    title = figure.layout.title.text
    assert "reports/robustness.json" in title
    assert "defenses: test 72 clips" in title and "strongest attack: test 360 clips" in title


def test_an_old_report_draws_its_defenses_without_error_bars_and_no_table_gives_none():
    figure = defense_figure(robustness(new_format=False))
    assert {trace.xaxis for trace in figure.data} == {"x"}  # no strongest table: one panel
    assert all(trace.error_x.array is None for trace in figure.data)
    assert "defenses: test 72 clips" in figure.layout.title.text
    assert defense_figure({"tables": {"table1": []}}) is None
    assert defense_figure({}) is None


def test_localization_is_grouped_by_model_and_budget_one_panel_per_split():
    report = robustness()
    figure = localization_figure(report)
    assert [trace.name for trace in figure.data] == ["✓AV", "✗A", "✗V", "✗AV"] * 2
    assert [trace.xaxis for trace in figure.data] == ["x"] * 4 + ["x2"] * 4
    assert figure.layout.barmode == "group"
    for trace in figure.data:
        split = "test" if trace.xaxis == "x" else "test-heldout"
        source = [row for row in report["tables"]["localization"]
                  if row["split"] == split and row["condition"] == trace.name]
        assert list(trace.x) == [f"av-concat<br>{row['budget']} budget" for row in source]
        assert list(trace.y) == pytest.approx([row["pointing_game"] for row in source])
        assert list(trace.error_y.array) == pytest.approx([row["intervals"]["pointing_game"][1] - row["pointing_game"]
                                                           for row in source])
        assert list(trace.error_y.arrayminus) == pytest.approx([0.1] * len(source))
    assert "reports/robustness.json" in figure.layout.title.text
    assert "test 72–360 clips / test-heldout 72–360 clips" in figure.layout.title.text
    old = localization_figure(robustness(new_format=False))
    assert all(trace.error_y.array is None for trace in old.data)
    assert localization_figure({"tables": {}}) is None and accuracy_vs_eps_figure({"curves": []}) is None


def test_the_note_names_each_report_its_stamp_and_clips_or_why_it_is_missing():
    note = figures_note(robustness(), TRANSFER)
    assert "`reports/robustness.json`" in note and "`python -m avdemo.evaluation --per-class 20`" in note
    assert "2026-12-01T10:00:00+00:00" in note and "0.2.0+abc1234" in note
    # each section with the clips its own rows rest on, tiers largest first, splits apart
    assert "the strongest attack on test 360 clips" in note
    assert "localization under attack (caption budget / paper preset) on test 360 / 72, test-heldout 360 / 72 clips" in note
    assert "Table 3 (defenses) on test 80 / 72 / 70 clips" in note
    report = robustness()
    remeasured = [{**row, "clips": 36} for row in report["tables"]["table3"]]
    updated = {**report, "tables": {**report["tables"], "table3": remeasured},
               "updates": [{"command": "python -m avdemo.evaluation --sections table3 --update",
                            "date": "2026-12-02", "code_version": "0.2.1", "sections": ["table3"]}]}
    assert "`python -m avdemo.evaluation --sections table3 --update` on 2026-12-02 at code 0.2.1: Table 3 (defenses) " \
           "on test 36 clips" in figures_note(updated, None)
    assert "the strongest attack on test 360 clips" in figures_note(updated, None)
    assert "`reports/transfer.json`, test 18 clips (the first clip per class), 2026-12-01 09:00" in note
    assert "test 36 clips" in figures_note(robustness(new_format=False), None)
    missing = figures_note(None, None)
    assert "No `reports/robustness.json` yet" in missing and "No `reports/transfer.json` yet" in missing
    broken = figures_note(None, TRANSFER, {report_figures.ROBUSTNESS_SOURCE: "could not be read (bad JSON)"})
    assert "`reports/robustness.json` could not be read (bad JSON)" in broken and "yet" not in broken


@pytest.fixture
def report_paths(tmp_path, monkeypatch) -> tuple[Path, Path]:
    paths = tmp_path / "robustness.json", tmp_path / "transfer.json"
    monkeypatch.setattr(ui, "ROBUSTNESS_REPORT", paths[0])
    monkeypatch.setattr(ui, "TRANSFER_REPORT", paths[1])
    return paths


def test_the_tab_says_which_reports_are_missing_and_draws_nothing(report_paths):
    note, *figures = ui.evaluation_figures()
    assert "No `reports/robustness.json` yet: run `make evaluate`" in note
    assert "No `reports/transfer.json` yet: run `python -m avdemo.evaluation.transfer`" in note
    assert figures == [None, None, None, None]


def test_the_tab_reads_each_report_once_per_version_and_says_when_one_is_unreadable(report_paths):
    robustness_path, transfer_path = report_paths
    robustness_path.write_text(json.dumps(robustness(), ensure_ascii=False))
    transfer_path.write_text('{"records": ')  # half written
    note, eps, heatmap, defenses, localization = ui.evaluation_figures()
    assert "could not be read" in note and "`reports/transfer.json`" in note and heatmap is None
    assert "0.2.0+abc1234" in note and None not in (eps, defenses, localization)
    stat = robustness_path.stat()
    changed = robustness()
    changed["stamp"]["code_version"] = "0.3.0+def5678"
    robustness_path.write_text(json.dumps(changed, ensure_ascii=False))
    os.utime(robustness_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same version: read from the cache
    assert "0.2.0+abc1234" in ui.evaluation_figures()[0]
    os.utime(robustness_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new version of the report
    assert "0.3.0+def5678" in ui.evaluation_figures()[0]
    robustness_path.unlink()
    assert "No `reports/robustness.json` yet" in ui.evaluation_figures()[0]  # gone, though read before


def test_the_page_wires_the_figures_to_the_tab_without_reading_a_report(report_paths, monkeypatch):
    monkeypatch.setattr(ui, "_read_json", lambda path, stamp: pytest.fail("a report was read while building the page"))
    demo = ui.build_app()
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"evaluation-figures", "figures-note", "eps-figure", "transfer-figure", "defense-figure",
            "localization-figure"} <= ids
    wired = [dependency for dependency in demo.fns.values()
             if getattr(dependency.fn, "__name__", "") == "evaluation_figures"]
    assert len(wired) == 1 and wired[0].api_visibility == "private"
    (target, event), = wired[0].targets
    assert event == "select" and demo.blocks[target].label == "Robustness"  # drawn when the tab opens
    outputs = [block.elem_id for block in wired[0].outputs]
    assert outputs == ["figures-note", "eps-figure", "transfer-figure", "defense-figure", "localization-figure"]
