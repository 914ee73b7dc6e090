"""The Gradio app: pick a video, a model, a defense, an attack and its budget; see the
predictions, the localization heatmaps against ground truth, the perturbation as image and
as sound, the attack's trace and the clip's place in the model's t-SNE maps.

The handlers are plain functions over `avdemo.lab.analysis` and `avdemo.lab.views`, testable
without a browser; `build_app` lays them out and `launch` serves them (`app.py`).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np

from . import report_figures, views
from .. import NUM_SAMPLES, SAMPLE_RATE
from ..attacks import PAPER_EPS_BOTH, PAPER_EPS_SINGLE, AttackSettings, attack_parameters, available_attacks, paper_preset
from ..data.examples import EXAMPLES_DIR, SCENARIOS
from ..data.masking import UNITS
from ..data.truth import read_ground_truth, sidecar_path
from ..defenses import BASE_MODEL
from ..media import MediaError, clip_from_image, decode_clip, write_mp4
from ..models import IMAGENET_STD
from ..paths import REPORTS
from ..zoo import describe, list_models, models_with_role, read_card
from .analysis import (MASKING, NO_DEFENSE, SAME_MODEL, Analysis, RunTooLong, defense_choices, estimated_seconds,
                       resolve_model, run, run_masking)
from .export import write_bundle
from .lessons import DEFAULT_CONTROLS, lesson_for
from .targets import region_at, resolve_region, silent_objects

MAX_UPLOAD_MB = 100
MAX_DURATION_S = 600
RUN_SECONDS = float(os.environ.get("AVDEMO_RUN_SECONDS", "120"))  # a host's cap on one Run's attack
SLOW_SECONDS = 5.0  # runs expected to take longer are announced before they start
# The progress line under Run keeps its text and timer but not Gradio's animated logo: redrawn
# every frame, the logo kept a core of a small laptop half busy for the whole Run.
PAGE_CSS = '#cost [data-testid="status-tracker"] svg { display: none; }'
MODALITIES = ("both", "audio", "visual")
CLASSWISE_REPORT = REPORTS / "classwise.json"  # written by `python -m avdemo.evaluation.robust_training`
NO_CLASSWISE = "No class-wise report yet: run `python -m avdemo.evaluation.robust_training`"
ROBUSTNESS_REPORT = REPORTS / "robustness.json"  # written by `make evaluate` (`python -m avdemo.evaluation`)
TRANSFER_REPORT = REPORTS / "transfer.json"  # written by `python -m avdemo.evaluation.transfer`

try:  # Hugging Face ZeroGPU: borrow a GPU for each run where the `spaces` package exists.
    import spaces

    gpu = spaces.GPU(duration=60)
except ImportError:

    def gpu(function):
        return function


def compute_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def example_paths() -> list[Path]:
    return [EXAMPLES_DIR / f"{scenario.name}.mp4" for scenario in SCENARIOS if (EXAMPLES_DIR / f"{scenario.name}.mp4").is_file()]


def model_choices() -> list[str]:
    """The models a person picks from (defended entries come through the defense menu): the
    base model first, then the other fusions, the localization model and the unimodal ones."""
    models = models_with_role("fusion", "localization", "unimodal")
    return sorted(models, key=lambda name: (name != BASE_MODEL, describe(name)["role"] == "unimodal", name))


def craft_choices() -> list[tuple[str, str]]:
    """(label, key) for the craft-on menu: the model shown itself (white-box), then the model menu's
    models and the other backbones' (the surrogates of transfer across architectures)."""
    return [("the same model (white-box)", SAME_MODEL),
            *((name, name) for name in (*model_choices(), *models_with_role("backbone")))]


def transfers(model: str, defense: str, craft_on: str | None) -> bool:
    """Whether a Run crafts its attack on another model than the one shown (black-box transfer)."""
    return craft_on not in (None, "", SAME_MODEL) and craft_on != resolve_model(model, defense or NO_DEFENSE)[0]


def shipped_example(video: str | Path) -> Path | None:
    """The shipped example a file is (Gradio hands handlers a copy), matched by name and size:
    cheap enough for every Run, and an upload would have to copy both to be mistaken for one."""
    candidate = EXAMPLES_DIR / Path(video).name
    if candidate.is_file() and Path(video).stat().st_size == candidate.stat().st_size:
        return candidate
    return None


def model_frames(model: str, defense: str = NO_DEFENSE) -> int:
    """T, the frames per clip the chosen model (with its defense) was trained and measured at."""
    entry, _ = resolve_model(model, defense or NO_DEFENSE)
    return int(read_card(entry).data["data"].get("frames", 1))


def load_input(video: str | None, image: str | None = None, sound: str | None = None, frames: int = 1):
    """Decode what the person gave into a clip of `frames` frames: a video, or a still image
    with an optional sound file. Returns (clip, ground truth or None). Bad input raises
    `gr.Error` with the reason."""
    limit = MAX_UPLOAD_MB * 2**20
    try:
        if video:
            clip = decode_clip(video, num_frames=frames, max_bytes=limit)
            if clip.info.duration > MAX_DURATION_S:
                raise gr.Error(f"The video lasts {clip.info.duration / 60:.0f} min; the limit is {MAX_DURATION_S // 60} min.")
            example = shipped_example(video)
            truth = read_ground_truth(example, clip.frame_times, clip.frames.shape[1]) if example else None
            return clip, truth
        if image:
            return clip_from_image(image, sound, num_frames=frames, max_bytes=limit), None
    except MediaError as error:
        raise gr.Error(str(error)) from error
    raise gr.Error("Choose an example, upload a video, or upload an image (with an optional sound file).")


def snr_hint(video: str | None, image: str | None, sound: str | None, eps_audio: float) -> str:
    """The SNR that an audio perturbation of L-inf size eps could reach at worst on this clip."""
    if eps_audio <= 0:
        return "Audio untouched (ε_a = 0)."
    try:
        clip, _ = load_input(video, image, sound)
    except gr.Error:
        return f"ε_a = {eps_audio:.4f} (waveform amplitude)."
    worst = np.sqrt(len(clip.waveform)) * eps_audio
    level = float(np.linalg.norm(clip.waveform))
    if level == 0:
        return f"ε_a = {eps_audio:.4f}: the clip is silent, any perturbation is pure added sound."
    return f"ε_a = {eps_audio:.4f}: SNR ≥ {20 * np.log10(level / worst):.1f} dB on this clip (a full-size perturbation)."


def attack_settings(modality: str, eps_audio: float, eps_visual_255: float, steps: int, seed: int, paper: bool) -> AttackSettings:
    """The page's controls as one settings object: the paper preset, or the sliders' budgets on
    the attacked modality (PGD starts at a seeded random point; other attacks ignore it)."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if paper:
        return paper_preset(modality)
    return AttackSettings(eps_audio=float(eps_audio) if modality in ("audio", "both") else 0.0,
                          eps_visual=float(eps_visual_255) / 255 if modality in ("visual", "both") else 0.0,
                          steps=int(steps), random_start=True, seed=int(seed))


def _configuration(model: str, defense: str, what: str) -> str:
    return f"{model}, {'no defense' if defense in (None, '', NO_DEFENSE) else f'defense {defense}'}, {what}"


def _analyse(clip, truth, model, defense, attack, modality, eps_audio, eps_visual_255, steps, target, seed, paper,
             progress: Callable[[float, str], None], region: str | None = None, craft_on: str = SAME_MODEL):
    """One configuration's run; bad settings and the host's time cap become `gr.Error`."""
    try:
        settings = attack_settings(modality, eps_audio, eps_visual_255, steps, seed, bool(paper))
        return run(clip, model, defense, attack, settings, target, truth, compute_device(), progress, RUN_SECONDS, region,
                   craft_on)
    except RunTooLong as error:
        raise gr.Error(f"Stopped: {error} (AVDEMO_RUN_SECONDS, set by this page's host). Try fewer steps.") from error
    except ValueError as error:
        raise gr.Error(str(error)) from error


def run_cost(model: str, defense: str, steps: int, compare: bool = False, model_b: str = "",
             defense_b: str = "", craft_on: str = SAME_MODEL) -> tuple[float, int]:
    """Expected seconds of attack and gradient steps of a Run (both configurations in compare mode,
    which crafting on another model turns off). Raises ValueError for a model that cannot be crafted on."""
    seconds, count = estimated_seconds(model, defense or NO_DEFENSE, steps, craft_on or SAME_MODEL)
    if compare and not transfers(model, defense, craft_on):
        more_seconds, more = estimated_seconds(model_b or model, defense_b or NO_DEFENSE, steps)
        seconds, count = seconds + more_seconds, count + more
    return seconds, count


def cost_hint(model: str, defense: str, steps: int, compare: bool = False, model_b: str = "", defense_b: str = "",
              craft_on: str = SAME_MODEL) -> str:
    """What a Run will cost, said before it starts: gradient steps and the expected seconds."""
    seconds, count = run_cost(model, defense, steps, compare, model_b, defense_b, craft_on)
    slow = " A slow run: progress is shown per step." if seconds > SLOW_SECONDS else ""
    return f"This Run: {count} gradient steps, about {seconds:.1f} s of attack.{slow}"


@gpu
def run_attack(video, image, sound, model, defense, attack, modality, eps_audio, eps_visual_255, steps, target, seed, paper,
               compare=False, model_b=None, defense_b=None, modality_b=None, region=None, craft_on=SAME_MODEL,
               progress=gr.Progress()):
    """The Run button: decode, attack one configuration (or two, to compare), measure, and
    render every view. `region`: where `map-target` moves the map (`avdemo.lab.targets`).
    `craft_on`: another model to craft the attack on (black-box transfer); column A then shows the
    model chosen, never touched by the attacker, and column B the crafting model, in place of
    compare mode's second configuration. Returns the values of `OUTPUTS`, in order."""
    defense, defense_b = defense or NO_DEFENSE, defense_b or NO_DEFENSE
    model_b, modality_b = model_b or model, modality_b or modality
    target = None if target in (None, "", "none") else target
    region = region if takes_region(attack) else None
    craft_on = craft_on or SAME_MODEL
    transfer = transfers(model, defense, craft_on)
    compare = bool(compare) and not transfer
    try:
        slow = run_cost(model, defense, steps, compare, model_b, defense_b, craft_on)[0] > SLOW_SECONDS
    except ValueError as error:  # a model the attack cannot be crafted on
        raise gr.Error(str(error)) from error
    if slow:
        gr.Warning(cost_hint(model, defense, steps, compare, model_b, defense_b, craft_on))
    share = 0.45 if compare else 0.9
    clip, truth = load_input(video, image, sound, model_frames(model, defense))
    analysis = _analyse(clip, truth, model, defense, attack, modality, eps_audio, eps_visual_255, steps, target, seed, paper,
                        lambda done, text: progress(share * done, desc=f"A: {text}"), region, craft_on)
    first = f"A: {_configuration(model, defense, f'attack on {modality}')}"
    second = None
    if transfer:
        first += f"; crafted on {craft_on}, this model never touched by the attacker"
        second = (analysis.surrogate, f"B: {craft_on}, the model the attack was crafted on (white-box: what the attacker saw)")
    elif compare:
        clip_b, truth_b = (clip, truth) if model_frames(model_b, defense_b) == len(clip.frames) else \
            load_input(video, image, sound, model_frames(model_b, defense_b))
        second = (_analyse(clip_b, truth_b, model_b, defense_b, attack, modality_b, eps_audio, eps_visual_255, steps,
                           target, seed, paper, lambda done, text: progress(0.45 + share * done, desc=f"B: {text}"), region),
                  f"B: {_configuration(model_b, defense_b, f'attack on {modality_b}')}")
    progress(0.92, desc="drawing")
    bundle = write_bundle(analysis, Path(tempfile.mkdtemp(prefix="avdemo-")), model, defense, attack, analysis.settings,
                          target, {"video": video, "image": image, "sound": sound})
    return _outputs((analysis, first), second, bundle)


@gpu
def mask_clip(video, image, sound, model, defense, share_percent, mode, seed):
    """The masking button: the model (with its defense) on the clip with `share_percent` % of its
    time masked in `mode` (a key of `avdemo.data.masking.MODES`), drawn with `seed`, and no attack,
    shown through the Run's views in column A. Returns the values of `OUTPUTS`, in order."""
    defense = defense or NO_DEFENSE
    clip, truth = load_input(video, image, sound, model_frames(model, defense))
    try:
        analysis = run_masking(clip, model, defense, float(share_percent) / 100, mode, int(seed or 0), truth, compute_device())
    except ValueError as error:
        raise gr.Error(str(error)) from error
    bundle = write_bundle(analysis, Path(tempfile.mkdtemp(prefix="avdemo-")), model, defense, MASKING, None, None,
                          {"video": video, "image": image, "sound": sound})
    what = f"{float(share_percent):.0f} % of the time masked in {views.MASK_MODE_NAMES[mode]}, no attack"
    return _outputs((analysis, f"A: {_configuration(model, defense, what)}"), None, bundle)


def _outputs(first: tuple[Analysis, str], second: tuple[Analysis, str] | None, bundle: list[Path]) -> tuple:
    """The values of `OUTPUTS`: a column per (analysis, heading), B's empty without a second, then
    the details of the first, its take-away bundle and the clip's class (`clip_class`)."""
    analysis = first[0]
    clean_audio, adversarial_audio, perturbation_audio, gain_note = views.audio_tracks(analysis)
    perturbation, perturbation_note = views.perturbation_image(analysis)

    def column(shown: tuple[Analysis, str] | None) -> tuple:
        if shown is None:
            return "", None, "", None
        result, heading = shown
        return (f"**{heading}**. {views.localization_verdict(result)}", views.segment_strip(result),
                views.summary_markdown(result), views.top_k_figure(result))

    return (
        *column(first),
        *column(second),
        perturbation,
        perturbation_note,
        clean_audio,
        adversarial_audio,
        perturbation_audio,
        gain_note,
        views.sound_figure(analysis),
        views.trace_figure(analysis),
        views.tsne_figure(analysis) if analysis.embeddings else None,
        None,  # the playable mp4 is written on request (`playable_video`)
        [str(path) for path in bundle],
        clip_class(analysis),
    )


OUTPUTS = ("verdict_a", "strip_a", "summary_a", "top_k_a", "verdict_b", "strip_b", "summary_b", "top_k_b", "perturbation",
           "perturbation_note", "clean_audio", "adversarial_audio", "perturbation_audio", "gain_note", "sound_plot",
           "trace_plot", "tsne_plot", "adversarial_video", "take_away", "clip_class")


def clip_class(analysis: Analysis) -> list[str]:
    """The class the class-wise view highlights for a run's clip, and where it comes from: [class,
    "true"] where the clip has ground truth, else [the model's clean prediction, "predicted"]."""
    if analysis.truth is not None:
        return [analysis.truth.label, "true"]
    return [analysis.classes[int(analysis.clean_probabilities.argmax())], "predicted"]


def example_class(video: str | None) -> list[str] | None:
    """A chosen clip's true class, read from its sidecar before any Run, for a shipped example;
    None for an upload (its predicted class comes with its Run: `clip_class`)."""
    try:
        example = shipped_example(video) if video else None
    except OSError:
        return None
    sidecar = sidecar_path(example) if example else None
    if sidecar is None or not sidecar.is_file():
        return None
    return [json.loads(sidecar.read_text())["label"], "true"]


@functools.lru_cache(maxsize=6)
def _read_json(path: str, stamp: int) -> dict:
    return json.loads(Path(path).read_text())


def _report(path: Path) -> dict | None:
    """A JSON report, read once per version of the file (`stamp`: its modification time): never
    at start-up, and a report written while the page is served shows without a restart. None
    while there is none; OSError or ValueError when it cannot be read (half written, not JSON)."""
    try:
        return _read_json(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None


def classwise_report() -> dict | None:
    """`reports/classwise.json` (`CLASSWISE_REPORT`) through `_report`."""
    return _report(CLASSWISE_REPORT)


def classwise_view(shown: list[str] | None = None) -> tuple:
    """The class-wise view: a line on what it shows and which class is highlighted, the figure
    (`views.classwise_figure`) and the table (`views.classwise_table`); `NO_CLASSWISE` and nothing
    drawn while the report is missing. `shown`: [class, "true" | "predicted"] (`clip_class`), or
    None before the clip's class is known."""
    try:
        report = classwise_report()
    except (OSError, ValueError) as error:  # half written, or not JSON
        return f"The class-wise report `{CLASSWISE_REPORT.name}` could not be read ({error}).", None, []
    if report is None:
        return NO_CLASSWISE, None, []
    name, source = shown if shown else (None, None)
    rows = {row["class"]: row for row in report.get("per_class", [])}
    note = (f"Each class's accuracy drop under attack against its convexity κ_c and the log density ρ_c of its fused "
            f"features, for {report.get('model', '?')} on {report.get('split', '?')} "
            f"({report.get('clips_per_class', '?')} clips per class, convexity from {report.get('convexity_points', '?')} "
            f"points, density quantile {report.get('density_quantile', '?')}). ")
    if name is None:
        note += "Run a clip to highlight its class."
    elif name not in rows:
        note += f"This clip's {source} class, **{name}**, is not among the report's classes."
    else:
        row = rows[name]
        numbers = ", ".join(f"{label} {value:.3g}" for label, key in (("drop", "drop"), ("κ_c", "convexity_input"),
                                                                        ("ρ_c", "log_density_fused"))
                            if (value := views.report_value(row.get(key))) is not None)
        note += f"Highlighted: **{name}**, this clip's {source} class ({numbers or 'no values'})."
    return note, views.classwise_figure(report, name), views.classwise_table(report, name)


def evaluation_figures() -> tuple:
    """The Robustness tab's evaluation figures, drawn when the tab opens (`avdemo.lab.report_figures`):
    a note on the reports they come from (`ROBUSTNESS_REPORT`, `TRANSFER_REPORT`), then accuracy
    against ε, the transfer matrix, the defenses and localization under attack; a figure is None
    where its report is missing, cannot be read or lacks its table, and the note says which."""
    reports, problems = {}, {}
    for source, path in ((report_figures.ROBUSTNESS_SOURCE, ROBUSTNESS_REPORT),
                         (report_figures.TRANSFER_SOURCE, TRANSFER_REPORT)):
        try:
            reports[source] = _report(path)
        except (OSError, ValueError) as error:  # half written, or not JSON
            reports[source], problems[source] = None, f"could not be read ({error})"
    robustness, transfer_report = reports[report_figures.ROBUSTNESS_SOURCE], reports[report_figures.TRANSFER_SOURCE]

    def drawn(figure, report: dict | None):
        return figure(report) if report is not None else None

    return (report_figures.figures_note(robustness, transfer_report, problems),
            drawn(report_figures.accuracy_vs_eps_figure, robustness),
            drawn(report_figures.transfer_heatmap, transfer_report),
            drawn(report_figures.defense_figure, robustness),
            drawn(report_figures.localization_figure, robustness))


def playable_video(take_away: list[str] | None) -> str:
    """The adversarial input as a playable H.264 + AAC mp4, written from the lossless bundle on
    request (it costs about as much as drawing every view, and most people never play it)."""
    bundle = next((path for path in take_away or [] if str(path).endswith(".npz")), None)
    if bundle is None:
        raise gr.Error("Run an attack first: the video is made from its adversarial input.")
    with np.load(bundle) as arrays:
        frames, waveform = arrays["adversarial_frames"], arrays["adversarial_waveform"]
    return str(write_mp4(Path(tempfile.mkdtemp(prefix="avdemo-")) / "adversarial.mp4", frames, waveform))


def takes_region(attack: str) -> bool:
    return "target_region" in attack_parameters(attack)


def _aimed(clip, truth, region: str | None) -> tuple[np.ndarray, str]:
    """The clip's first frame with the target drawn, and the region: the one given when it fits
    this clip, else the clip's first silent object, else none yet ("")."""
    size = clip.frames.shape[1]
    for candidate in [*([region] if region else []), *silent_objects(truth)]:
        try:
            boxes, _ = resolve_region(candidate, truth, size)
        except ValueError:
            continue
        return views.target_picker(clip.frames[0], truth, np.asarray(boxes[0]) * size), candidate
    return views.target_picker(clip.frames[0], truth, None), ""


def target_view(video, image, sound, model, defense, region: str | None) -> tuple[np.ndarray, str]:
    """The frame to click on for the clip the person gave, with the target drawn, and the region (`_aimed`)."""
    return _aimed(*load_input(video, image, sound, model_frames(model, defense or NO_DEFENSE)), region)


def show_target(attack, video, image, sound, model, defense, region):
    """The target controls, shown (and filled for this clip) only for attacks that take a region."""
    if not attack or not takes_region(attack) or not (video or image):
        return gr.update(visible=bool(attack) and takes_region(attack)), gr.update(), gr.update()
    picker, region = target_view(video, image, sound, model, defense, region)
    return gr.update(visible=True), picker, region


def pick_target(video, image, sound, model, defense, evt: gr.SelectData):
    """A click on the target frame: the silent object under it, or a square around the point."""
    clip, truth = load_input(video, image, sound, model_frames(model, defense or NO_DEFENSE))
    x, y = evt.index
    return _aimed(clip, truth, region_at(float(x), float(y), clip.frames.shape[1], truth))


def paper_preset_values(modality: str) -> tuple[float, float, int, bool, str]:
    """Slider values for the paper preset (visual ε shown as its mean over channels)."""
    eps = PAPER_EPS_BOTH if modality == "both" else PAPER_EPS_SINGLE
    visual = float(np.mean([eps * s for s in IMAGENET_STD]) * 255)
    note = (f"Paper preset: ε = {eps} in ImageNet-normalised units, i.e. audio {eps} and pixels ε·std_c "
            f"(≈{visual:.2f}/255), 10 steps of ε/8.")
    return eps, round(visual, 2), 10, True, note


def model_cards_markdown() -> str:
    """A table of the zoo: what each model is and how it measured."""
    rows = ["| model | description | val | test | held-out test | robust PGD-10 ✗AV, worst case (paper / visible budget) | "
            "pointing game | map |", "|---|---|---|---|---|---|---|---|"]
    for name in list_models():
        card = describe(name)
        metrics = card.get("metrics", {})
        cell = lambda key: f"{metrics[key]:.1%}" if key in metrics else "–"  # noqa: E731
        rows.append(f"| {name} | {card.get('description', '')} | {cell('val_accuracy')} | {cell('test_accuracy')} | "
                    f"{cell('test_heldout_accuracy')} | {cell('robust_pgd_paper_both_accuracy')} / "
                    f"{cell('robust_pgd_visible_both_accuracy')} | {cell('pointing_game_test')} | "
                    f"{(card.get('map') or {}).get('kind', '–')} |")
    return "\n".join(rows)


def reports_markdown() -> str:
    """The robustness reports written by `make evaluate` (`python -m avdemo.evaluation`), when they exist."""
    reports = sorted(REPORTS.glob("*.md")) if REPORTS.is_dir() else []
    if not reports:
        return "No evaluation report yet: run `make evaluate` to write `reports/`."
    return "\n\n".join(report.read_text() for report in reports)


def example_choices() -> list[tuple[str, str]]:
    """(label, path) of each shipped example for the menu."""
    return [(path.stem, str(path)) for path in example_paths()]


def choose_example(video: str | None) -> tuple[str | None, str]:
    """An example picked from the menu: load it and show its lesson."""
    if not video:
        return None, ""
    return video, lesson_markdown(Path(video).stem)


def lesson_markdown(example: str) -> str:
    """The example's guided step, or what the clip is when it has none."""
    lesson = lesson_for(example)
    if lesson is None:
        scenario = next((s for s in SCENARIOS if s.name == example), None)
        return f"**{example}**: {scenario.lesson}" if scenario else ""
    return f"**Lesson, {example}**: {lesson.step}"


def apply_lesson(video: str | None) -> tuple:
    """The lesson's settings, applied to the controls in one click (values in `LESSON_CONTROLS` order)."""
    lesson = lesson_for(Path(video).stem) if video else None
    if lesson is None:
        raise gr.Error("This clip has no lesson: pick one of the examples.")
    values = lesson.controls()
    return tuple(values[name] for name in LESSON_CONTROLS)


LESSON_CONTROLS = ("model", "defense", "attack", "modality", "eps_audio", "eps_visual", "steps", "compare", "model_b",
                   "defense_b", "modality_b", "paper", "craft_on")
ARRIVAL = {"example": "duck-beside-rooster", **DEFAULT_CONTROLS, "target": "none", "seed": 0}  # the page's first state
ARRIVAL_VIDEO = EXAMPLES_DIR / f"{ARRIVAL['example']}.mp4"
_arrival_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _arrival() -> tuple:
    values = run_attack(str(ARRIVAL_VIDEO), None, None, *(ARRIVAL[k] for k in ("model", "defense", "attack", "modality", "eps_audio",
                                                                      "eps_visual", "steps", "target", "seed", "paper")),
                        craft_on=ARRIVAL["craft_on"], progress=lambda *args, **kwargs: None)
    return str(ARRIVAL_VIDEO), lesson_markdown(ARRIVAL_VIDEO.stem), values


def arrival() -> tuple:
    """What the page shows before anyone clicks: the arrival example run with the controls'
    defaults (computed once per process, at start-up by `warm_up`): the video, its lesson and
    every output of `run_attack`."""
    with _arrival_lock:
        video, lesson, values = _arrival()
    return (video, lesson, *values)


def masking_note(frames: int) -> str:
    """What the masking control does, said for clips of `frames` frames (the models' T)."""
    window = NUM_SAMPLES / UNITS / SAMPLE_RATE
    return (f"Hide a share of the clip's time and run the Model above (with its Defense) on it, **with no attack**. "
            f"The clip is cut into {UNITS} windows of {100 / UNITS:.0f} % ({window:.2f} s) and that share of them is drawn "
            "at random (*Draw* picks others): the sound is silenced in a masked window, and a frame is replaced by the "
            "ImageNet-mean frame (no signal, to the model) when its moment falls in one. These models see "
            f"{frames} frames, at {views.frame_moments(frames)} of the clip, so 5 % silences {window:.2f} s of sound but "
            "hides a frame only when the drawn window holds one of those moments. The result shows in column A "
            "(compare and craft-on do not apply).")


def shown_columns(compare: bool, model: str, defense: str, craft_on: str) -> tuple:
    """The compare controls (compare mode, unless the attack is crafted on another model) and
    column B (compare mode, or the model the attack is crafted on)."""
    transfer = transfers(model, defense, craft_on)
    return gr.update(visible=bool(compare) and not transfer), gr.update(visible=bool(compare) or transfer)


def transfer_layout(compare: bool, model: str, defense: str, craft_on: str) -> tuple:
    """`shown_columns`, and the compare box: off and locked while column B shows the crafting model."""
    transfer = transfers(model, defense, craft_on)
    box = gr.update(value=False, interactive=False) if transfer else gr.update(interactive=True)
    return (*shown_columns(compare and not transfer, model, defense, craft_on), box)


def build_app() -> gr.Blocks:
    """The page; `app.py` launches it. The first controls a person needs (example, model,
    defense, attack, budgets, Run) sit at the top of the left column, within a 1366x768 screen;
    the rest fold away. The right column holds the guided lesson and the results: one column per
    configuration (two in compare mode), then the details of configuration A."""
    models = model_choices()
    classes = describe(models[0])["classes"] if models else []
    examples = example_choices()
    with gr.Blocks(title="avdemo: attacking audio-visual models") as demo:
        gr.Markdown("## avdemo: how audio-visual models, and where they hear the sound, fail under attack")
        with gr.Tab("Attack"):
            with gr.Row():
                with gr.Column(scale=1, min_width=360):
                    example = gr.Dropdown(examples, value=str(ARRIVAL_VIDEO) if examples else None, label="Example clip",
                                          elem_id="example")
                    with gr.Row():
                        model = gr.Dropdown(models, value=ARRIVAL["model"], label="Model", elem_id="model")
                        defense = gr.Dropdown(defense_choices(), value=ARRIVAL["defense"], label="Defense",
                                              info=f"built on {BASE_MODEL}; attacked with every objective", elem_id="defense")
                    with gr.Row():
                        attack = gr.Dropdown(available_attacks(), value=ARRIVAL["attack"], label="Attack", elem_id="attack")
                        modality = gr.Radio(list(MODALITIES), value=ARRIVAL["modality"], label="Attacked modality",
                                            elem_id="modality")
                    with gr.Row():
                        eps_audio = gr.Slider(0, 0.05, value=ARRIVAL["eps_audio"], step=0.0005, label="ε audio (amplitude)",
                                              elem_id="eps-audio")
                        eps_visual = gr.Slider(0, 16, value=ARRIVAL["eps_visual"], step=0.05, label="ε visual (/255)",
                                               elem_id="eps-visual")
                    with gr.Row():
                        run_button = gr.Button("Run", variant="primary", elem_id="run", scale=2)
                        compare = gr.Checkbox(value=ARRIVAL["compare"], label="Compare with B", elem_id="compare", scale=1)
                    cost = gr.Markdown(cost_hint(ARRIVAL["model"], ARRIVAL["defense"], ARRIVAL["steps"]) if models else "",
                                       elem_id="cost")
                    with gr.Group(visible=False) as target_controls:
                        target_picker = gr.Image(label="Where should the map go? Click a silent object, or any point",
                                                 interactive=False, height=224, elem_id="target-picker", buttons=[])
                        target_region = gr.Textbox(label="Target region", elem_id="target-region", max_lines=1,
                                                   info="\"silent <object>\" or x0, y0, x1, y1 in fractions of the frame; "
                                                        "Enter to redraw")
                    with gr.Group(visible=False) as compare_controls:
                        gr.Markdown("**B**: the same clip and attack on a second configuration")
                        with gr.Row():
                            model_b = gr.Dropdown(models, value=ARRIVAL["model_b"], label="Model B", elem_id="model-b")
                            defense_b = gr.Dropdown(defense_choices(), value=ARRIVAL["defense_b"],
                                                    label="Defense B", elem_id="defense-b")
                            modality_b = gr.Radio(list(MODALITIES), value=ARRIVAL["modality_b"], label="Attacked modality B",
                                                  elem_id="modality-b")
                    with gr.Accordion("Black-box transfer: craft the attack on another model", open=False,
                                      elem_id="transfer"):
                        craft_on = gr.Dropdown(craft_choices(), value=ARRIVAL["craft_on"], label="Craft the attack on",
                                               elem_id="craft-on")
                        gr.Markdown("The attack is crafted on this model (white-box: its gradients, the attack's own "
                                    "objective) and the **same** adversarial input is shown on the Model above, with its "
                                    "Defense, which the attacker never touches. Column A shows that model, column B the "
                                    "one the attack was crafted on; *Compare with B* is off meanwhile. Any model here "
                                    "knows the same classes.")
                    snr = gr.Markdown()
                    with gr.Accordion("More attack settings", open=False):
                        steps = gr.Slider(1, 50, value=ARRIVAL["steps"], step=1, label="Steps (iterative attacks)", elem_id="steps")
                        target = gr.Dropdown(["none", *classes], value=ARRIVAL["target"], label="Target class (targeted attack)",
                                             elem_id="target")
                        seed = gr.Number(value=ARRIVAL["seed"], precision=0, label="Seed (PGD random start)", elem_id="seed")
                        preset = gr.Button("Paper preset")
                        paper = gr.Checkbox(value=ARRIVAL["paper"], label="Use the paper preset exactly (per-channel ε)",
                                            elem_id="paper")
                        preset_note = gr.Markdown()
                    with gr.Accordion("Mask part of the clip (no attack)", open=False, elem_id="masking"):
                        gr.Markdown(masking_note(model_frames(ARRIVAL["model"])) if models else "")
                        mask_share = gr.Slider(0, 30, value=20, step=5, label="Share of the clip's time masked (%)",
                                               elem_id="mask-share")
                        mask_mode = gr.Radio([(name, key) for key, name in views.MASK_MODE_NAMES.items()], value="both-sync",
                                             label="What is masked", elem_id="mask-mode")
                        with gr.Row():
                            mask_seed = gr.Number(value=0, precision=0, label="Draw (which windows)", elem_id="mask-seed",
                                                  min_width=80)
                            mask_button = gr.Button("Mask and run the model", elem_id="mask-run")
                    with gr.Accordion("The clip: play it, or upload your own video or an image with a sound", open=False):
                        video = gr.Video(label="Video", sources=["upload"], height=240, elem_id="video")
                        image = gr.Image(label="Image", type="filepath", sources=["upload"], height=160)
                        sound = gr.Audio(label="Sound (optional)", type="filepath", sources=["upload"])
                with gr.Column(scale=2):
                    with gr.Row():
                        lesson = gr.Markdown(elem_id="lesson")
                        lesson_button = gr.Button("Set up this lesson", size="sm", scale=0, elem_id="lesson-apply")
                    with gr.Row(equal_height=False):
                        with gr.Column():
                            verdict_a = gr.Markdown(elem_id="verdict-a")
                            strip_a = gr.Image(label="Where the model hears the sound, per segment: clean (top), attacked "
                                                     "or masked (middle); green box = the sounding object, white = silent ones. "
                                                     "Bottom: each segment's perturbation, the frame's |change| in 8-px "
                                                     "blocks amplified by the factor written (black = none), the blue bar "
                                                     "and dB: the audio perturbation in the segment's window, against the "
                                                     "clip's level",
                                               elem_id="strip-a", format="jpeg", show_label=True, buttons=[])
                            summary_a = gr.Markdown(elem_id="summary")
                            top_k_a = gr.Plot(label="Predictions", elem_id="top-k-a")
                        with gr.Column(visible=False) as column_b:
                            verdict_b = gr.Markdown(elem_id="verdict-b")
                            strip_b = gr.Image(label="B, per segment: clean (top), attacked (middle), same colour scale; "
                                                     "the perturbation (bottom)",
                                               elem_id="strip-b", format="jpeg", buttons=[])
                            summary_b = gr.Markdown(elem_id="summary-b")
                            top_k_b = gr.Plot(label="Predictions, B", elem_id="top-k-b")
                    gr.Markdown("### Details of A")
                    with gr.Row():
                        perturbation = gr.Image(label="Visual perturbation (amplified)", height=240, format="jpeg", buttons=[])
                        perturbation_note = gr.Markdown()
                    with gr.Accordion("Listen: the clean sound, the adversarial sound, the perturbation", open=False,
                                      elem_id="listen"):
                        with gr.Row():
                            clean_audio = gr.Audio(label="Clean sound (true level)", elem_id="clean-audio")
                            adversarial_audio = gr.Audio(label="Adversarial sound (true level)", elem_id="adversarial-audio")
                            perturbation_audio = gr.Audio(label="Perturbation (amplified)", elem_id="perturbation-audio")
                        gain_note = gr.Markdown()
                    with gr.Accordion("Waveforms and spectrograms", open=False, elem_id="sound"):
                        sound_plot = gr.Plot(label="Waveform and spectrograms")
                    with gr.Accordion("The attack step by step", open=False, elem_id="trace"):
                        trace_plot = gr.Plot(label="Attack trace")
                    tsne_plot = gr.Plot(label="t-SNE embeddings", elem_id="tsne")
                    take_away = gr.File(label="The adversarial input, lossless (adversarial.npz) and how it was made "
                                              "(run.json: settings, weights SHA-256, the command that makes it again)",
                                        file_count="multiple", elem_id="take-away")
                    video_button = gr.Button("Make a playable mp4 of the adversarial input", size="sm", elem_id="make-video")
                    adversarial_video = gr.Video(label="Adversarial video (H.264 + AAC, lossy: for watching; the exact "
                                                       "input is the .npz above)", height=240, elem_id="adversarial-video")
        with gr.Tab("Robustness") as robustness_tab:
            gr.Markdown("## The model zoo\n" + model_cards_markdown())
            with gr.Accordion("Class-wise robustness: which classes fall under attack, the clip's class highlighted",
                              open=True, elem_id="classwise"):
                classwise_note = gr.Markdown(elem_id="classwise-note")
                classwise_plot = gr.Plot(label="Accuracy drop per class against convexity and density",
                                         elem_id="classwise-plot")
                classwise_rows = gr.Dataframe(headers=list(views.CLASSWISE_COLUMNS), interactive=False,
                                              label="Per class (the clip's class first, marked ▶)", elem_id="classwise-table")
            with gr.Accordion("Evaluation figures: accuracy against ε, transfer, defenses, localization under attack",
                              open=True, elem_id="evaluation-figures"):
                figures_note = gr.Markdown(elem_id="figures-note")
                eps_plot = gr.Plot(label="Accuracy against ε", elem_id="eps-figure")
                transfer_plot = gr.Plot(label="Transfer between architectures", elem_id="transfer-figure")
                defense_plot = gr.Plot(label="Defenses and the strongest attack", elem_id="defense-figure")
                localization_plot = gr.Plot(label="Localization under attack", elem_id="localization-figure")
            gr.Markdown(reports_markdown())
        shown_class = gr.State(None)  # [class, "true" | "predicted"] of the clip shown: `clip_class`, `example_class`

        named = {"verdict_a": verdict_a, "strip_a": strip_a, "summary_a": summary_a, "top_k_a": top_k_a,
                 "verdict_b": verdict_b, "strip_b": strip_b, "summary_b": summary_b, "top_k_b": top_k_b,
                 "perturbation": perturbation, "perturbation_note": perturbation_note, "clean_audio": clean_audio,
                 "adversarial_audio": adversarial_audio, "perturbation_audio": perturbation_audio, "gain_note": gain_note,
                 "sound_plot": sound_plot, "trace_plot": trace_plot, "tsne_plot": tsne_plot,
                 "adversarial_video": adversarial_video, "take_away": take_away, "clip_class": shown_class}
        outputs = [named[name] for name in OUTPUTS]
        run_inputs = [video, image, sound, model, defense, attack, modality, eps_audio, eps_visual, steps, target, seed, paper,
                      compare, model_b, defense_b, modality_b, target_region, craft_on]
        # progress on the cost line only: a ticking tracker over every output costs the browser
        # more CPU than the attack's own steps on a small machine
        run_button.click(run_attack, inputs=run_inputs, outputs=outputs, api_name="run", show_progress_on=[cost])
        mask_button.click(mask_clip, inputs=[video, image, sound, model, defense, mask_share, mask_mode, mask_seed],
                          outputs=outputs, api_name="mask", show_progress_on=[cost])
        video_button.click(playable_video, inputs=[take_away], outputs=[adversarial_video], api_name="playable_video")
        if examples:
            demo.load(arrival, outputs=[video, lesson, *outputs], api_name="arrival", show_progress_on=[strip_a])
        layout_inputs = [compare, model, defense, craft_on]
        compare.change(shown_columns, inputs=layout_inputs, outputs=[compare_controls, column_b], api_visibility="private")
        for control in (craft_on, model, defense):
            control.change(transfer_layout, inputs=layout_inputs, outputs=[compare_controls, column_b, compare],
                           api_visibility="private")
        for control in (model, defense, steps, compare, model_b, defense_b, craft_on):
            control.change(cost_hint, inputs=[model, defense, steps, compare, model_b, defense_b, craft_on], outputs=[cost],
                           api_visibility="private")
        preset.click(paper_preset_values, inputs=[modality], outputs=[eps_audio, eps_visual, steps, paper, preset_note],
                     api_name="paper_preset")
        for slider in (eps_audio, eps_visual, steps):
            slider.input(lambda: False, outputs=[paper], api_visibility="private")
        eps_audio.change(snr_hint, inputs=[video, image, sound, eps_audio], outputs=[snr], api_visibility="private")
        video.change(snr_hint, inputs=[video, image, sound, eps_audio], outputs=[snr], api_visibility="private")
        example.input(choose_example, inputs=[example], outputs=[video, lesson], api_visibility="private")
        # the class-wise view: drawn when the Robustness tab opens, redrawn when the clip's class changes
        # (a chosen example's true class at once, an upload's or any run's class with its Run)
        video.change(example_class, inputs=[video], outputs=[shown_class], api_visibility="private")
        classwise = {"fn": classwise_view, "inputs": [shown_class], "outputs": [classwise_note, classwise_plot, classwise_rows],
                     "api_visibility": "private"}
        shown_class.change(**classwise)
        robustness_tab.select(**classwise)
        robustness_tab.select(evaluation_figures, outputs=[figures_note, eps_plot, transfer_plot, defense_plot,
                                                           localization_plot], api_visibility="private")
        target_inputs = [attack, video, image, sound, model, defense, target_region]
        for trigger in (attack.change, video.change, image.change, target_region.submit):
            trigger(show_target, inputs=target_inputs, outputs=[target_controls, target_picker, target_region],
                    api_visibility="private")
        target_picker.select(pick_target, inputs=[video, image, sound, model, defense], outputs=[target_picker, target_region],
                             api_visibility="private")
        controls = {"model": model, "defense": defense, "attack": attack, "modality": modality, "eps_audio": eps_audio,
                    "eps_visual": eps_visual, "steps": steps, "compare": compare, "model_b": model_b,
                    "defense_b": defense_b, "modality_b": modality_b, "paper": paper, "craft_on": craft_on}
        lesson_button.click(apply_lesson, inputs=[video], outputs=[controls[name] for name in LESSON_CONTROLS],
                            api_name="apply_lesson")
    return demo


def warm_up() -> None:
    """Run the arrival example once at start-up: the first visitor finds it drawn, and the
    default model, its defense terms and t-SNE maps are loaded."""
    if example_paths() and list_models():
        arrival()


def launch(demo: gr.Blocks, warm: bool = True, **kwargs) -> None:
    """Serve with a queue (runs are CPU-heavy: a few at a time) and upload limits; compute the
    arrival example in the background so the page answers at once."""
    if warm:
        threading.Thread(target=warm_up, daemon=True).start()
    demo.queue(default_concurrency_limit=int(os.environ.get("AVDEMO_CONCURRENCY", "2")), max_size=32)
    demo.launch(max_file_size=f"{MAX_UPLOAD_MB}mb", css=PAGE_CSS, **kwargs)
