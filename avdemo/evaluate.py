"""Robustness evaluation of the zoo, as the CVPR 2021 paper measured its models:
`python -m avdemo.evaluate [--per-class 5] [--out reports]`.

Tables (each on the in-distribution test split and on the held-out test split):
- table1: the base model (av-concat) clean (✓AV) and attacked on audio (✗A), visual (✗V) or
  both (✗AV), Avg = mean of the three, under FGSM, PGD-10 and MIM-10, beside the unimodal
  models (✓A, ✓V); at the paper preset and at the budgets of the paper's captions.
- table2: the five fusions under FGSM at the paper preset.
- table3: the defenses under FGSM and MIM at the paper preset, each attacked adaptively
  (through ExFMem's ISTA and with the model's own training term), with Avg and RI.
- curves (Figure 3): accuracy against eps under PGD-10 for ✗A, ✗V, ✗AV and the unimodal models.
- localization: pointing game, cIoU (LVS: map above its median vs the box), AUC of cIoU and
  how often the map's peak lands on a silent distractor, clean and under ✗A, ✗V, ✗AV (PGD-10).

Budgets, as the paper: eps in ImageNet-normalised units; audio eps is the waveform amplitude,
visual eps is eps * std_c per channel in pixel units. The paper preset is 0.006 when both
modalities are attacked and 0.012 when one is; the captions' budgets are ten times that
(0.06 / 0.12: the values the paper's captions print, about 3.4/255 and 6.9/255 in pixels),
a budget at which the perturbation starts to be perceptible.

Output in `--out`: robustness.json (schema below), robustness.md and one CSV per table, each
stamped with the command, the code version and the checkpoints' SHA-256.

JSON schema: {"stamp": {"command", "code_version", "date", "device", "seconds", "clips_per_class",
"splits": {split: clips}, "checkpoints": {name: sha256}}, "tables": {"table1" | "table2" |
"table3" | "localization": [row, ...]}, "curves": [{"split", "series", "eps", "accuracy"}]}.
Every row holds "split" and the table's columns, accuracies as fractions in [0, 1].
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from . import __version__
from .attacks import create_attack
from .data.shards import ShardDataset
from .data.synth import SynthConfig, split_dir
from .localization import box_mask, ciou, ciou_auc, distractor_hits, localization_maps, pointing_game, upsample
from .metrics import average_attacked, relative_improvement
from .models import IMAGENET_STD
from .zoo import describe, list_models, load_defense_term, load_model

REPORTS = Path(__file__).resolve().parents[1] / "reports"
ATTACKS = ("fgsm", "pgd", "mim")
MODALITIES = {"✗A": "audio", "✗V": "visual", "✗AV": "both"}
BUDGETS = {"paper": (0.006, 0.012), "caption": (0.06, 0.12)}  # (both attacked, one attacked), normalised units
FUSIONS = ("av-sum", "av-concat", "av-film", "av-gated-sum", "av-gated-concat")
DEFENSES = {"None": "av-concat", "Unimodal A": "audio-only", "Unimodal V": "visual-only", "PCL": "av-pcl",
            "MaxSim": "av-maxsim", "MinSim": "av-minsim", "ExFMem": "av-concat-exfmem",
            "MinSim+ExFMem": "av-minsim-exfmem"}
CURVE_EPS = (0.0, 0.003, 0.006, 0.012, 0.024, 0.048)
BATCH = 45


def attack_options(attack: str, modality: str, eps: float) -> dict:
    """Keyword arguments for an attack at a normalised-units budget on one modality or both."""
    options = {"eps_audio": eps if modality in ("audio", "both") else 0.0,
               "eps_visual": tuple(eps * s for s in IMAGENET_STD) if modality in ("visual", "both") else 0.0}
    if attack != "fgsm":
        options.update(steps=10, step_audio=options["eps_audio"] / 8,
                       step_visual=tuple(e / 8 for e in options["eps_visual"]) if options["eps_visual"] else 0.0)
    return options


def cached_splits(per_class: int | None, splits=("test", "test-heldout")) -> dict[str, Dataset]:
    """The first `per_class` clips of each class of the cached AV-Synth splits (all with None):
    AV-Synth labels cycle through the classes, so a prefix is a fixed, balanced subset."""
    datasets = {}
    for split in splits:
        dataset = ShardDataset(split_dir(split, 0, SynthConfig()))
        count = len(dataset) if per_class is None else per_class * len(dataset.classes)
        datasets[split] = Subset(dataset, range(min(count, len(dataset))))
    return datasets


class Evaluator:
    """Holds the loaded models and the clips of each split."""

    def __init__(self, datasets: dict[str, Dataset], device: str, log=print):
        self.device, self.log = device, log
        self.splits = datasets
        self._models: dict[str, torch.nn.Module] = {}
        self._clean: dict[tuple[str, str], float] = {}
        self.clips_seen = 0

    def model(self, name: str) -> torch.nn.Module:
        if name not in self._models:
            self._models[name] = load_model(name, self.device)
        return self._models[name]

    def batches(self, split: str):
        return DataLoader(self.splits[split], batch_size=BATCH)

    def accuracy(self, name: str, split: str, attack: str | None = None, modality: str = "both", eps: float = 0.0) -> float:
        """Clean accuracy (attack None or eps 0) or accuracy under an adaptive attack."""
        if attack is None or eps == 0:
            key = (name, split)
            if key not in self._clean:
                self._clean[key] = self._accuracy(name, split, None)
            return self._clean[key]
        model = self.model(name)
        term = load_defense_term(name.removesuffix("-exfmem"), self.device)
        return self._accuracy(name, split, create_attack(attack, model, extra_loss=term, **attack_options(attack, modality, eps)))

    def _accuracy(self, name: str, split: str, attacker) -> float:
        model = self.model(name)
        correct = total = 0
        for batch in self.batches(split):
            waveform, frames = batch["waveform"].to(self.device), batch["frames"].to(self.device)
            labels = batch["label"].to(self.device)
            if attacker is None:
                with torch.no_grad():
                    logits = model(waveform, frames).logits
            else:
                logits = attacker(waveform, frames, labels).output.logits
            correct += (logits.argmax(-1) == labels).sum().item()
            total += len(labels)
        self.clips_seen += total
        return correct / max(total, 1)

    def attacked_row(self, name: str, split: str, attack: str, budget: tuple[float, float]) -> dict:
        both, single = budget
        row = {"✓AV": self.accuracy(name, split)}
        for column, modality in MODALITIES.items():
            row[column] = self.accuracy(name, split, attack, modality, both if modality == "both" else single)
        row["Avg"] = average_attacked(row["✗A"], row["✗V"], row["✗AV"])
        return row

    def localization(self, name: str, split: str, attack: str, eps: tuple[float, float]) -> list[dict]:
        """Localization scores of a model's maps, clean and under ✗A, ✗V, ✗AV."""
        model = self.model(name)
        rows = []
        for condition, modality in (("✓AV", None), *MODALITIES.items()):
            maps_all, boxes, distractors = [], [], []
            if modality is not None:
                budget = eps[0] if modality == "both" else eps[1]
                attacker = create_attack(attack, model, **attack_options(attack, modality, budget))
            for batch in self.batches(split):
                waveform, frames = batch["waveform"].to(self.device), batch["frames"].to(self.device)
                if modality is None:
                    with torch.no_grad():
                        output = model(waveform, frames)
                else:
                    output = attacker(waveform, frames, batch["label"].to(self.device)).output
                with torch.no_grad():
                    maps = upsample(localization_maps(output), frames.shape[-1]).flatten(0, 1).cpu().numpy()
                maps_all.append(maps)
                boxes.append(batch["box"].flatten(0, 1).numpy())
                distractors.append(batch["distractor_box"].flatten(0, 1).numpy())
            maps, box, distractor = np.concatenate(maps_all), np.concatenate(boxes), np.concatenate(distractors)
            cious = ciou(maps, box_mask(box, maps.shape[-1]))
            rows.append({"model": name, "condition": condition, "pointing_game": float(pointing_game(maps, box).mean()),
                         "ciou": float(cious.mean()), "ap50": float((cious >= 0.5).mean()), "auc": ciou_auc(cious),
                         "distractor_peak": float(distractor_hits(maps, distractor).mean())})
        return rows


def evaluate(datasets: dict[str, Dataset], device: str = "cpu", log=print, per_class: int | None = None,
             sections=("table1", "table2", "table3", "curves", "localization")) -> dict:
    """Every table and curve on each split (name -> clips); returns the report (see the module docstring)."""
    started = time.perf_counter()
    evaluator = Evaluator(datasets, device, log)
    splits = list(datasets)
    tables: dict[str, list[dict]] = {name: [] for name in ("table1", "table2", "table3", "localization")}
    curves: list[dict] = []
    for split in splits:
        log(f"[{split}] {len(evaluator.splits[split])} clips")
        unimodal = {"✓A": evaluator.accuracy("audio-only", split), "✓V": evaluator.accuracy("visual-only", split)}
        if "table1" in sections:
            for budget_name, budget in BUDGETS.items():
                for attack in ATTACKS:
                    row = evaluator.attacked_row("av-concat", split, attack, budget)
                    tables["table1"].append({"split": split, "budget": budget_name, "attack": attack.upper(), **row,
                                             "Unimodal ✓A": unimodal["✓A"], "Unimodal ✓V": unimodal["✓V"]})
                    log(f"  table1 {budget_name} {attack}: " + _fmt(row))
        if "table2" in sections:
            for fusion in FUSIONS:
                row = evaluator.attacked_row(fusion, split, "fgsm", BUDGETS["paper"])
                tables["table2"].append({"split": split, "fusion": fusion, **row})
                log(f"  table2 {fusion}: " + _fmt(row))
        if "table3" in sections:
            for attack in ("fgsm", "mim"):
                base = None
                for defense, name in DEFENSES.items():
                    row = evaluator.attacked_row(name, split, attack, BUDGETS["paper"])
                    base = base or row
                    row["RI"] = relative_improvement(row["✓AV"], row["Avg"], base["✓AV"], base["Avg"])
                    tables["table3"].append({"split": split, "attack": attack.upper(), "defense": defense, "model": name, **row})
                    log(f"  table3 {attack} {defense}: " + _fmt(row))
        if "curves" in sections:
            series = {"✗A (av-concat, audio attacked)": ("av-concat", "audio"),
                      "✗V (av-concat, visual attacked)": ("av-concat", "visual"),
                      "✗AV (av-concat, both attacked)": ("av-concat", "both"),
                      "Unimodal A (audio attacked)": ("audio-only", "audio"),
                      "Unimodal V (visual attacked)": ("visual-only", "visual")}
            for label, (name, modality) in series.items():
                accuracy = [evaluator.accuracy(name, split, "pgd", modality, eps) for eps in CURVE_EPS]
                curves.append({"split": split, "series": label, "eps": list(CURVE_EPS), "accuracy": accuracy})
                log(f"  curve {label}: " + " ".join(f"{a:.2f}" for a in accuracy))
            curves.append({"split": split, "series": "Unimodal ✓A (clean)", "eps": list(CURVE_EPS), "accuracy": [unimodal["✓A"]] * len(CURVE_EPS)})
            curves.append({"split": split, "series": "Unimodal ✓V (clean)", "eps": list(CURVE_EPS), "accuracy": [unimodal["✓V"]] * len(CURVE_EPS)})
        if "localization" in sections:
            for name in ("av-attention", "av-concat"):
                for budget_name, budget in BUDGETS.items():
                    for row in evaluator.localization(name, split, "pgd", budget):
                        tables["localization"].append({"split": split, "budget": budget_name, **row})
                        log(f"  localization {name} {budget_name} {row['condition']}: pointing {row['pointing_game']:.2f}, "
                            f"cIoU {row['ciou']:.2f}, distractor {row['distractor_peak']:.2f}")
    seconds = time.perf_counter() - started
    return {
        "stamp": {
            "command": " ".join(["python -m avdemo.evaluate", *sys.argv[1:]]),
            "code_version": f"{__version__}+{_git_revision()}",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": device,
            "seconds": round(seconds, 1),
            "clips_per_second": round(evaluator.clips_seen / seconds, 2),
            "clips_per_class": per_class or "all",
            "splits": {split: len(subset) for split, subset in evaluator.splits.items()},
            "checkpoints": {name: describe(name)["weights"]["sha256"] for name in list_models()},
        },
        "tables": {name: rows for name, rows in tables.items() if rows},
        "curves": curves,
    }


def _fmt(row: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float))


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cell(value) -> str:
    return f"{100 * value:.1f}" if isinstance(value, float) else str(value)


def markdown(report: dict) -> str:
    """The report as markdown tables (accuracies in %)."""
    stamp = report["stamp"]
    lines = ["# Robustness report", "",
             f"`{stamp['command']}` at code {stamp['code_version']}, {stamp['date']}, on {stamp['device']} "
             f"({stamp['seconds'] / 60:.1f} min, {stamp['clips_per_second']} clips/s attacked or clean). "
             f"Clips per class: {stamp['clips_per_class']}; splits: "
             + ", ".join(f"{k} {v} clips" for k, v in stamp["splits"].items()) + ". Accuracies in %.", ""]
    titles = {"table1": "Table 1 analogue: av-concat under attack, beside the unimodal models",
              "table2": "Table 2 analogue: the five fusions under FGSM (paper preset)",
              "table3": "Table 3 analogue: defenses under FGSM and MIM (paper preset, adaptive attacks)",
              "localization": "Localization under PGD-10 attacks, scored against ground truth"}
    for name, rows in report["tables"].items():
        columns = list(rows[0])
        lines += [f"## {titles[name]}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
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
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=None,
                        help="clips per class of each split (default: 4 on CPU, about 30 min; all on GPU)")
    parser.add_argument("--splits", nargs="+", default=["test", "test-heldout"])
    parser.add_argument("--sections", nargs="+", default=["table1", "table2", "table3", "curves", "localization"])
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    per_class = args.per_class if args.per_class is not None else (None if args.device.startswith("cuda") else 4)
    report = evaluate(cached_splits(per_class, tuple(args.splits)), args.device, per_class=per_class,
                      sections=tuple(args.sections))
    for path in write_report(report, args.out):
        print(f"  wrote {path}")


if __name__ == "__main__":
    main()
