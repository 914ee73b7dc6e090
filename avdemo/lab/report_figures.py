"""Interactive figures of the evaluation reports for the Robustness tab: accuracy against ε, the
transfer matrix, the defenses and localization under attack, each with its 95 % intervals.

Every function is pure (a parsed report in, a plotly figure or None out), so each can be tested
without a browser. Each title names the report file and the clips its numbers rest on: a figure
read without them would look more certain than it is. Reports written before intervals and
clip counts were recorded are drawn without bands and error bars, their clips "unknown".
"""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative
from plotly.subplots import make_subplots

from ..evaluation import transfer
from ..evaluation.intervals import wilson_interval
from ..evaluation.report import SECTION_LABELS, clip_tiers, section_clips_text, section_runs

ROBUSTNESS_SOURCE = "reports/robustness.json"
TRANSFER_SOURCE = "reports/transfer.json"
ATTACK_NAMES = {"noise": "noise (control)", "fgsm": "FGSM", "ifgsm": "I-FGSM", "mim": "MI-FGSM", "mig": "MIG",
                "pam": "PAM", "tia": "TIA", "mma": "MMA", "tma": "TMA"}
SHOWN_FIRST = "tma"  # the strongest proposed attack: the transfer matrix opens on it
CONDITION_COLOURS = {"✓AV": "#4c78a8", "✗A": "#f58518", "✗V": "#54a24b", "✗AV": "#e45756"}
SPLIT_PATTERNS = ("", "/", ".", "x")  # bar fill per split, where one panel holds several splits
BAND_OPACITY = 0.18
PALETTE = qualitative.Plotly
MARGIN = {"l": 60, "r": 20, "t": 110, "b": 50}


def _translucent(colour: str) -> str:
    red, green, blue = hex_to_rgb(colour)
    return f"rgba({red}, {green}, {blue}, {BAND_OPACITY})"


def _splits(rows: Iterable[dict]) -> list[str]:
    return list(dict.fromkeys(row["split"] for row in rows))


def _clip_count(row: dict, column: str | None = None) -> int | None:
    """The clips a row's number rests on: `clips` is one count, or {column: count} in newer Table 3 rows."""
    clips = row.get("clips")
    return clips.get(column) if isinstance(clips, dict) else clips


def _clips_text(rows: list[dict], column: str | None = None) -> str:
    """The clips per split, as "test 360 clips / test-heldout 72 clips" (a range where a split's rows
    differ), or "clips unknown" in reports that do not say."""
    return " / ".join(f"{split} {counts[0] if len(counts) == 1 else f'{counts[-1]}–{counts[0]}'} clips"
                      for split, counts in clip_tiers(rows, column).items()) or "clips unknown"


def _interval(row: dict, column: str) -> tuple[float, float] | None:
    interval = row.get("intervals", {}).get(column)
    return (float(interval[0]), float(interval[1])) if interval is not None else None


def _error_bars(values: list[float], intervals: list[tuple[float, float] | None]) -> dict | None:
    """Plotly error bars (distances above and below each value) from intervals; None when a row lacks one."""
    if not intervals or any(interval is None for interval in intervals):
        return None
    return {"type": "data", "symmetric": False, "array": [high - value for value, (_, high) in zip(values, intervals)],
            "arrayminus": [value - low for value, (low, _) in zip(values, intervals)], "thickness": 1.2, "width": 3}


def _interval_text(interval: tuple[float, float] | None, signed: bool = False) -> str:
    if interval is None:
        return ""
    low, high = (f"{100 * bound:+.0f}" if signed else f"{100 * bound:.0f}" for bound in interval)
    return f" [{low}, {high}] %"


def accuracy_vs_eps_figure(report: dict) -> go.Figure | None:
    """Where does accuracy fall as the budget grows, and how sure is each point? From
    robustness.json's "curves" (a list of {"split", "series", "eps", "accuracy", "interval"?,
    "clips"?}): one panel per split, one line per series with its 95 % Wilson band, the clean
    series dashed as references; ε on the x axis ×10⁻³ in ImageNet-normalised units. Returns the
    figure, or None when the report has no curves."""
    curves = report.get("curves") or []
    if not curves:
        return None
    splits = _splits(curves)
    series = list(dict.fromkeys(curve["series"] for curve in curves))
    figure = make_subplots(rows=1, cols=len(splits), subplot_titles=splits, shared_yaxes=True, horizontal_spacing=0.05)
    for column, split in enumerate(splits, start=1):
        for curve in (c for c in curves if c["split"] == split):
            colour = PALETTE[series.index(curve["series"]) % len(PALETTE)]
            eps = [1000 * e for e in curve["eps"]]
            bounds = [(float(low), float(high)) for low, high in curve.get("interval") or []]
            if bounds:
                figure.add_scatter(x=eps + eps[::-1], y=[low for low, _ in bounds] + [high for _, high in bounds][::-1],
                                   fill="toself", fillcolor=_translucent(colour), line={"width": 0}, hoverinfo="skip",
                                   name=f"{curve['series']}: 95 % interval", legendgroup=curve["series"],
                                   showlegend=False, row=1, col=column)
            clean = "clean" in curve["series"]
            hover = [f"{curve['series']}<br>ε {x:g}×10⁻³: {100 * y:.0f} %"
                     + (_interval_text(bounds[index]) if bounds else "")
                     for index, (x, y) in enumerate(zip(eps, curve["accuracy"]))]
            figure.add_scatter(x=eps, y=curve["accuracy"], mode="lines" if clean else "lines+markers",
                               name=curve["series"], line={"color": colour, "dash": "dash" if clean else "solid"},
                               hovertext=hover, hoverinfo="text", legendgroup=curve["series"], showlegend=column == 1,
                               row=1, col=column)
        figure.update_xaxes(title_text="ε (×10⁻³, ImageNet-normalised units)", row=1, col=column)
    figure.update_yaxes(range=[0, 1], tickformat=".0%")
    figure.update_yaxes(title_text="accuracy (PGD-10)", row=1, col=1)
    figure.update_layout(height=460, margin=MARGIN, legend={"orientation": "h", "y": -0.2},
                         title=f"Accuracy against attack strength, with 95 % Wilson bands"
                               f"<br><sup>from {ROBUSTNESS_SOURCE}, {_clips_text(curves)}</sup>")
    return figure


def _model_label(name: str) -> str:
    """A zoo entry with its architecture ("av-concat (RcW)"), an ensemble by its members' architectures."""
    members = transfer.members(name)
    if len(members) > 1:
        return "ensemble " + "+".join(transfer.architecture(member) for member in members)
    return f"{name} ({transfer.architecture(name)})"


def transfer_heatmap(report: dict) -> go.Figure | None:
    """Does an attack crafted on one model fool another? From transfer.json, through
    `transfer.matrix_rows` (each attack at the settings its sweep chose): the success rate on each
    victim (columns) of what was crafted on each surrogate (rows), at the headline budget (visible,
    both modalities) or else the first one measured; one heatmap per attack, picked with buttons,
    TMA shown first. The hover holds successes / trials and the 95 % Wilson interval. Returns the
    figure, or None when the report holds no measured pair."""
    rows = [row for row in transfer.matrix_rows(report) if row["trials"]]
    if not rows:
        return None
    measured = {(row["budget"], row["modality"]) for row in rows}
    budget, modality = transfer.HEADLINE if transfer.HEADLINE in measured else (rows[0]["budget"], rows[0]["modality"])
    rows = [row for row in rows if row["budget"] == budget and row["modality"] == modality]
    attacks = [attack for attack in transfer.ATTACKS if any(row["attack"] == attack for row in rows)]
    surrogates = sorted({row["surrogate"] for row in rows})
    victims = sorted({row["victim"] for row in rows}, key=lambda victim: (transfer.architecture(victim), victim))
    shown = SHOWN_FIRST if SHOWN_FIRST in attacks else attacks[0]
    figure = go.Figure()
    for attack in attacks:
        rates, hover = [], []
        for surrogate in surrogates:
            rate_row, hover_row = [], []
            for victim in victims:
                successes, trials = transfer.pooled(rows, attack=attack, surrogate=surrogate, victim=victim)
                low, high = wilson_interval(successes, trials)
                rate_row.append(successes / trials if trials else None)
                hover_row.append(f"{ATTACK_NAMES.get(attack, attack)}: crafted on {surrogate}, judged on {victim}<br>"
                                 + (f"{successes}/{trials} clips fooled ({successes / trials:.0%}), 95 % interval "
                                    f"{low:.0%}–{high:.0%}" if trials else "not measured"))
            rates.append(rate_row)
            hover.append(hover_row)
        figure.add_heatmap(z=rates, x=[_model_label(v) for v in victims], y=[_model_label(s) for s in surrogates],
                           zmin=0, zmax=1, colorscale="Viridis", colorbar={"title": "success", "tickformat": ".0%"},
                           text=[[f"{rate:.0%}" if rate is not None else "" for rate in line] for line in rates],
                           texttemplate="%{text}", hovertext=hover, hoverinfo="text", name=attack,
                           visible=attack == shown)
    buttons = [{"label": ATTACK_NAMES.get(attack, attack), "method": "restyle",
                "args": [{"visible": [other == attack for other in attacks]}]} for attack in attacks]
    figure.update_layout(
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.02,
                      "yanchor": "bottom", "active": attacks.index(shown), "showactive": True, "buttons": buttons}],
        height=200 + 45 * len(surrogates), margin={**MARGIN, "l": 200, "t": 150},
        xaxis={"title": "victim (judged on)", "tickangle": -30},
        yaxis={"title": "surrogate (crafted on)", "autorange": "reversed"},
        title=f"Transfer: success rate on the victim of an attack crafted on the surrogate ({budget} budget, "
              f"{modality})<br><sup>from {TRANSFER_SOURCE}, {_transfer_clips(report)}; success = share of the clips "
              "the victim gets right clean that it gets wrong attacked. R / V: ResNet18 / VGG frames; c / s: concat / "
              "sum; W / M: waveform / log-mel</sup>")
    return figure


def _transfer_clips(report: dict) -> str:
    stamp = report.get("stamp", {})
    return f"{stamp['split']} {stamp['clips']} clips" if "clips" in stamp and "split" in stamp else "clips unknown"


def defense_figure(report: dict) -> go.Figure | None:
    """Which defense helps, and does any survive the strongest attack? From robustness.json's
    "table3" (RI per defense against FGSM and MIM) and "strongest" (robust accuracy per model under
    the per-clip worst case over every attack, per budget): a panel for each table the report
    has, horizontal bars with 95 % intervals as error bars, rows in the report's order, one bar
    fill per split. Returns the figure, or None when the report has neither table."""
    tables = report.get("tables", {})
    defenses, strongest = tables.get("table3") or [], tables.get("strongest") or []
    panels = [panel for panel in (("table3", defenses), ("strongest", strongest)) if panel[1]]
    if not panels:
        return None
    titles = {"table3": "relative improvement RI per defense (FGSM, MIM)",
              "strongest": "robust accuracy under the strongest attack"}
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[titles[name] for name, _ in panels],
                           horizontal_spacing=0.22)
    attacks = len({row["attack"] for row in defenses})  # the budgets' colours follow the attacks': one legend, no clash
    for column, (name, rows) in enumerate(panels, start=1):
        if name == "table3":
            _bars(figure, rows, group="attack", category="defense", value="RI", column=column, signed=True)
            figure.update_xaxes(title_text="RI (+: better than no defense)", tickformat="+.0%", row=1, col=column)
        else:
            _bars(figure, rows, group="budget", category="model", value="strongest", column=column, signed=False,
                  first_colour=attacks)
            figure.update_xaxes(title_text="accuracy", tickformat=".0%", range=[0, 1], row=1, col=column)
    clips = "; ".join(f"{'defenses' if name == 'table3' else 'strongest attack'}: "
                      f"{_clips_text(rows, 'RI' if name == 'table3' else None)}" for name, rows in panels)
    figure.update_layout(barmode="group", height=200 + 12 * max(len(rows) for _, rows in panels), margin=MARGIN,
                         legend={"orientation": "h", "y": -0.12},
                         title=f"Defenses and the strongest attack, with 95 % intervals"
                               f"<br><sup>from {ROBUSTNESS_SOURCE}, {clips}</sup>")
    return figure


def _bars(figure: go.Figure, rows: list[dict], group: str, category: str, value: str, column: int,
          signed: bool, first_colour: int = 0) -> None:
    """Horizontal bars of `value` per `category` (in the rows' order, first at the top), one trace
    per (`group`, split): colour by group (from the palette's `first_colour`-th), fill pattern by split."""
    groups, splits = list(dict.fromkeys(row[group] for row in rows)), _splits(rows)
    order = list(dict.fromkeys(row[category] for row in rows))
    for split_index, split in enumerate(splits):
        for group_index, name in enumerate(groups):
            chosen = [row for row in rows if row[group] == name and row["split"] == split]
            if not chosen:
                continue
            values = [float(row[value]) for row in chosen]
            intervals = [_interval(row, value) for row in chosen]
            sign = "+" if signed else ""
            hover = [f"{row[category]}, {name}, {split}: {100 * v:{sign}.1f} %{_interval_text(interval, signed)}, "
                     f"{_clip_count(row, value) or '?'} clips" for row, v, interval in zip(chosen, values, intervals)]
            figure.add_bar(x=values, y=[row[category] for row in chosen], orientation="h",
                           name=f"{name}, {split}" if len(splits) > 1 else str(name),
                           error_x=_error_bars(values, intervals),
                           marker={"color": PALETTE[(first_colour + group_index) % len(PALETTE)],
                                   "pattern": {"shape": SPLIT_PATTERNS[split_index % len(SPLIT_PATTERNS)]}},
                           hovertext=hover, hoverinfo="text", row=1, col=column)
    figure.update_yaxes(categoryorder="array", categoryarray=order, autorange="reversed", row=1, col=column)


def localization_figure(report: dict) -> go.Figure | None:
    """Does the model still point at the sounding object under attack? From robustness.json's
    "localization" rows: pointing game per condition (clean ✓AV, ✗A, ✗V, ✗AV) as grouped bars
    with 95 % bootstrap intervals, one group per model and budget, one panel per split. Returns the
    figure, or None when the report has no localization table."""
    rows = report.get("tables", {}).get("localization") or []
    if not rows:
        return None
    splits = _splits(rows)
    conditions = list(dict.fromkeys(row["condition"] for row in rows))  # as the report lists them: clean first
    figure = make_subplots(rows=1, cols=len(splits), subplot_titles=splits, shared_yaxes=True, horizontal_spacing=0.05)
    for column, split in enumerate(splits, start=1):
        for index, condition in enumerate(conditions):
            chosen = [row for row in rows if row["split"] == split and row["condition"] == condition]
            if not chosen:
                continue
            values = [float(row["pointing_game"]) for row in chosen]
            intervals = [_interval(row, "pointing_game") for row in chosen]
            groups = [f"{row['model']}<br>{row['budget']} budget" for row in chosen]
            hover = [f"{row['model']}, {row['budget']} budget, {condition}: pointing game {100 * v:.0f} %"
                     f"{_interval_text(interval)}, {_clip_count(row) or '?'} clips"
                     for row, v, interval in zip(chosen, values, intervals)]
            figure.add_bar(x=groups, y=values, name=condition, error_y=_error_bars(values, intervals),
                           marker={"color": CONDITION_COLOURS.get(condition, PALETTE[index % len(PALETTE)])},
                           hovertext=hover, hoverinfo="text", legendgroup=condition, showlegend=column == 1,
                           row=1, col=column)
    figure.update_yaxes(range=[0, 1], tickformat=".0%")
    figure.update_yaxes(title_text="pointing game (peak inside the sounding object)", row=1, col=1)
    figure.update_layout(barmode="group", height=440, margin=MARGIN, legend={"orientation": "h", "y": -0.25},
                         title=f"Localization under PGD-10: pointing game clean and attacked, with 95 % intervals"
                               f"<br><sup>from {ROBUSTNESS_SOURCE}, {_clips_text(rows)}</sup>")
    return figure


def _robustness_runs(report: dict) -> str:
    """Each run that measured part of the report (its stamp, then each `--update`): command, date,
    code version and, per section it measured, the clips per split."""
    runs: dict[int, tuple[dict, list[str]]] = {}
    for section, run in section_runs(report).items():
        runs.setdefault(id(run), (run, []))[1].append(section)
    return "; ".join(
        f"`{run.get('command', '?')}` on {run.get('date', '?')} at code {run.get('code_version', '?')}: " + ", ".join(
            f"{SECTION_LABELS.get(section, section)} on {section_clips_text(report, section)} clips"
            for section in sections)
        for run, sections in runs.values())


def figures_note(robustness: dict | None, transfer_report: dict | None, problems: dict[str, str] | None = None) -> str:
    """What the figures below rest on, as markdown: for each report, the command, date, code
    version and clips it was measured with, or why it is not shown. `robustness`, `transfer_report`:
    the parsed reports, None where there is none; `problems`: {`ROBUSTNESS_SOURCE` or
    `TRANSFER_SOURCE`: why that file could not be read}."""
    problems = problems or {}
    if robustness is not None:
        first = (f"Accuracy against ε, defenses and localization: `{ROBUSTNESS_SOURCE}`, measured by "
                 f"{_robustness_runs(robustness)}.")
    elif ROBUSTNESS_SOURCE in problems:
        first = f"`{ROBUSTNESS_SOURCE}` {problems[ROBUSTNESS_SOURCE]}: no accuracy, defense or localization figure."
    else:
        first = (f"No `{ROBUSTNESS_SOURCE}` yet: run `make evaluate` (`python -m avdemo.evaluation`) for the accuracy, "
                 "defense and localization figures.")
    if transfer_report is not None:
        stamp = transfer_report.get("stamp", {})
        selection = f" ({stamp['selection']})" if stamp.get("selection") else ""
        second = (f"Transfer: `{TRANSFER_SOURCE}`, {_transfer_clips(transfer_report)}{selection}, "
                  f"{stamp.get('time', 'date unknown')}.")
    elif TRANSFER_SOURCE in problems:
        second = f"`{TRANSFER_SOURCE}` {problems[TRANSFER_SOURCE]}: no transfer figure."
    else:
        second = f"No `{TRANSFER_SOURCE}` yet: run `python -m avdemo.evaluation.transfer` for the transfer figure."
    return f"{first}\n\n{second}"
