"""The class-wise view (figure, table and the page's handler) on a hand-made report in the format
of `reports/classwise.json`: no model, no browser."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from avdemo.lab import ui, views
from avdemo.lab.views import CLASS_COLOUR, HIGHLIGHT_COLOUR, HIGHLIGHT_MARK, classwise_figure, classwise_table

CLASSES = ["bell", "cat", "cello", "dog", "duck", "owl"]
TREND = {"convexity_input": {"slope": -0.5, "intercept": 0.9, "spearman": -0.4, "spearman_p": 0.09, "pearson": -0.35,
                             "n": 6},
         "log_density_fused": {"slope": 0.02, "intercept": 0.7, "spearman": 0.31, "spearman_p": 0.55, "pearson": 0.2,
                               "n": 5}}


def report(nan_at: dict[str, str] | None = None) -> dict:
    """A report with one row per class; `nan_at`: {class: key} set to NaN."""
    rows = []
    for index, name in enumerate(CLASSES):
        row = {"class": name, "clean_accuracy": 1.0, "robust_accuracy": 0.1 * index, "drop": 1.0 - 0.1 * index,
               "convexity_input": 0.80 + 0.02 * index, "convexity_audio": 0.9, "convexity_visual": 0.95,
               "log_density_fused": -10.0 - index, "log_density_audio": -20.0, "log_density_visual": -15.0}
        if nan_at and name in nan_at:
            row[nan_at[name]] = math.nan
        rows.append(row)
    return {"model": "av-concat", "split": "test", "clips_per_class": 10, "convexity_points": 2000,
            "density_quantile": 0.5, "classes": CLASSES, "per_class": rows, "trend": TREND}


def markers(figure, column: int) -> list:
    """The figure's marker traces in panel `column` (1 or 2)."""
    axis = "x" if column == 1 else "x2"
    return [trace for trace in figure.data if "markers" in trace.mode and trace.xaxis == axis]


def test_two_panels_one_point_per_class_and_the_title_says_what_it_rests_on():
    figure = classwise_figure(report(), "cat")
    for column, key in ((1, "convexity_input"), (2, "log_density_fused")):
        traces = markers(figure, column)
        names = [name for trace in traces for name in trace.text]
        assert sorted(names) == CLASSES  # each class exactly once, in each panel
        placed = {name: (x, y) for trace in traces for name, x, y in zip(trace.text, trace.x, trace.y)}
        for row in report()["per_class"]:
            assert placed[row["class"]] == pytest.approx((row[key], row["drop"]))
    assert {trace.xaxis for trace in figure.data} == {"x", "x2"}
    title = figure.layout.title.text
    assert "av-concat" in title and "test" in title and "10 clips per class" in title
    panel_titles = [annotation.text for annotation in figure.layout.annotations]
    assert "ρ_s = -0.40" in panel_titles[0] and "p = 0.09" in panel_titles[0] and "n = 6" in panel_titles[0]
    assert "ρ_s = +0.31" in panel_titles[1] and "n = 5" in panel_titles[1]


@pytest.mark.parametrize("highlight", ["cat", "owl"])
def test_only_the_highlighted_class_is_large_and_orange(highlight):
    figure = classwise_figure(report(), highlight)
    for column in (1, 2):
        styled = {name: (trace.marker.color, trace.marker.size) for trace in markers(figure, column) for name in trace.text}
        assert styled[highlight][0] == HIGHLIGHT_COLOUR
        others = [style for name, style in styled.items() if name != highlight]
        assert all(colour == CLASS_COLOUR for colour, _ in others)
        assert all(size < styled[highlight][1] for _, size in others)


def test_no_highlight_without_a_class_or_for_an_unknown_one():
    for highlight in (None, "xylophone"):
        figure = classwise_figure(report(), highlight)
        colours = {trace.marker.color for column in (1, 2) for trace in markers(figure, column)}
        assert colours == {CLASS_COLOUR}


def test_the_trendline_is_the_reports_line_over_the_classes_x_range():
    figure = classwise_figure(report(), "cat")
    lines = [trace for trace in figure.data if trace.mode == "lines"]
    assert [trace.xaxis for trace in lines] == ["x", "x2"]
    for line, (key, trend) in zip(lines, TREND.items()):
        xs = [row[key] for row in report()["per_class"]]
        assert list(line.x) == pytest.approx([min(xs), max(xs)])
        assert list(line.y) == pytest.approx([trend["slope"] * x + trend["intercept"] for x in line.x])


def test_nan_values_are_left_out_of_their_panel_only():
    figure = classwise_figure(report({"dog": "convexity_input", "owl": "drop"}), "dog")
    left = [name for trace in markers(figure, 1) for name in trace.text]
    right = [name for trace in markers(figure, 2) for name in trace.text]
    assert sorted(left) == sorted(set(CLASSES) - {"dog", "owl"})  # dog: no κ; owl: no drop
    assert sorted(right) == sorted(set(CLASSES) - {"owl"})
    for trace in figure.data:
        assert np.isfinite(np.asarray(trace.x, dtype=float)).all() and np.isfinite(np.asarray(trace.y, dtype=float)).all()
    assert "2 classes without a value left out" in figure.layout.annotations[0].text
    figure.to_json()  # serialisable as Gradio sends it (NaN would be written as an invalid token)
    nan_trend = {**report(), "trend": {"convexity_input": {**TREND["convexity_input"], "slope": math.nan}}}
    assert not [trace for trace in classwise_figure(nan_trend, None).data if trace.mode == "lines"]


def test_the_table_puts_the_highlighted_class_first_and_marks_it():
    table = classwise_table(report({"bell": "convexity_visual"}), "dog")
    assert [row[0] for row in table] == [f"{HIGHLIGHT_MARK}dog", "bell", "cat", "cello", "duck", "owl"]
    assert all(len(row) == len(views.CLASSWISE_COLUMNS) for row in table)
    assert table[0][1:] == pytest.approx([1.0, 0.3, 0.7, 0.86, 0.9, 0.95, -13.0])
    assert table[1][views.CLASSWISE_COLUMNS.index("κ visual")] is None  # NaN: no value
    assert sum(str(row[0]).startswith(HIGHLIGHT_MARK) for row in table) == 1
    assert [row[0] for row in classwise_table(report(), None)] == CLASSES


def test_the_view_says_there_is_no_report_yet(tmp_path, monkeypatch):
    monkeypatch.setattr(ui, "CLASSWISE_REPORT", tmp_path / "classwise.json")
    note, figure, rows = ui.classwise_view(["dog", "true"])
    assert note == ui.NO_CLASSWISE and "python -m avdemo.evaluation.robust_training" in note
    assert figure is None and rows == []


def test_the_view_reads_the_report_and_highlights_the_clips_class(tmp_path, monkeypatch):
    path = tmp_path / "classwise.json"
    path.write_text(json.dumps(report({"cat": "log_density_fused"})))  # json writes NaN as the NaN token
    monkeypatch.setattr(ui, "CLASSWISE_REPORT", path)
    note, figure, rows = ui.classwise_view(["duck", "predicted"])
    assert "**duck**, this clip's predicted class" in note and "drop 0.6" in note
    assert rows[0][0] == f"{HIGHLIGHT_MARK}duck"
    assert sorted(name for trace in markers(figure, 2) for name in trace.text) == sorted(set(CLASSES) - {"cat"})
    assert "Run a clip" in ui.classwise_view(None)[0]
    changed = report()
    changed["model"] = "av-sum"
    path.write_text(json.dumps(changed))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new version of the report
    assert "av-sum" in ui.classwise_view(None)[1].layout.title.text


def test_the_clips_class_comes_from_its_sidecar_or_its_run(tmp_path, monkeypatch):
    monkeypatch.setattr(ui, "EXAMPLES_DIR", tmp_path)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"0" * 10)
    (tmp_path / "clip.json").write_text(json.dumps({"label": "cello"}))
    assert ui.example_class(str(video)) == ["cello", "true"]
    upload = tmp_path / "elsewhere"
    upload.mkdir()
    (upload / "mine.mp4").write_bytes(b"0" * 10)
    assert ui.example_class(str(upload / "mine.mp4")) is None and ui.example_class(None) is None

    class Run:
        classes = CLASSES
        clean_probabilities = np.array([0.1, 0.1, 0.5, 0.1, 0.1, 0.1])
        truth = None

    assert ui.clip_class(Run()) == ["cello", "predicted"]
    Run.truth = type("Truth", (), {"label": "owl"})()
    assert ui.clip_class(Run()) == ["owl", "true"]


def test_the_page_wires_the_view_without_reading_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(ui, "CLASSWISE_REPORT", tmp_path / "never-read.json")
    monkeypatch.setattr(ui, "classwise_report", lambda: pytest.fail("the report was read while building the page"))
    demo = ui.build_app()
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"classwise-note", "classwise-plot", "classwise-table"} <= ids
    assert "clip_class" in ui.OUTPUTS
    handlers = [getattr(dependency.fn, "__name__", "") for dependency in demo.fns.values()]
    assert handlers.count("classwise_view") == 2 and "example_class" in handlers
