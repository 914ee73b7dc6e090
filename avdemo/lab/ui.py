"""The Gradio app: pick a video, a model, a defense, an attack and its budget; see the
predictions, the localization heatmaps against ground truth, the perturbation as image and
as sound, the attack's trace and the clip's place in the model's t-SNE maps.

The handlers are plain functions over `avdemo.lab.analysis` and `avdemo.lab.views`, testable
without a browser; `build_app` lays them out and `launch` serves them (`app.py`).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import gradio as gr
import numpy as np

from . import views
from ..attacks import PAPER_EPS_BOTH, PAPER_EPS_SINGLE, AttackSettings, available_attacks, paper_preset
from ..data.examples import EXAMPLES_DIR, SCENARIOS
from ..data.truth import read_ground_truth
from ..defenses import BASE_MODEL
from ..media import MediaError, clip_from_image, decode_clip, write_mp4
from ..models import IMAGENET_STD
from ..paths import REPORTS
from ..zoo import describe, list_models, models_with_role, read_card
from .analysis import NO_DEFENSE, defense_choices, resolve_model, run
from .export import write_bundle

MAX_UPLOAD_MB = 100
MAX_DURATION_S = 600
MODALITIES = ("both", "audio", "visual")

try:  # Hugging Face ZeroGPU: borrow a GPU for each run where the `spaces` package exists.
    import spaces

    gpu = spaces.GPU(duration=60)
except ImportError:

    def gpu(function):
        return function


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def example_paths() -> list[Path]:
    return [EXAMPLES_DIR / f"{scenario.name}.mp4" for scenario in SCENARIOS if (EXAMPLES_DIR / f"{scenario.name}.mp4").is_file()]


def thumbnails(examples: list[Path]) -> list[tuple[np.ndarray, str]]:
    """The middle frame of each example, captioned with its name."""
    return [(decode_clip(path).frames[0], path.stem) for path in examples]


def choose_example(selection: gr.SelectData) -> tuple[str, str]:
    """A click on a thumbnail: load that example and say what it teaches."""
    path = example_paths()[selection.index]
    lesson = next((s.lesson for s in SCENARIOS if s.name == path.stem), "")
    return str(path), f"**{path.stem}**: {lesson}"


def model_choices() -> list[str]:
    """The models a person picks from (defended entries come through the defense menu): the
    base model first, then the other fusions, the localization model and the unimodal ones."""
    models = models_with_role("fusion", "localization", "unimodal")
    return sorted(models, key=lambda name: (name != BASE_MODEL, describe(name)["role"] == "unimodal", name))


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


@gpu
def run_attack(video, image, sound, model, defense, attack, modality, eps_audio, eps_visual_255, steps, target, seed, paper,
               progress=gr.Progress()):
    """The Run button: decode, attack, measure, and render every view."""
    clip, truth = load_input(video, image, sound, model_frames(model, defense))
    progress(0.2, desc="attacking")
    defense, target = defense or NO_DEFENSE, None if target in (None, "", "none") else target
    try:
        settings = attack_settings(modality, eps_audio, eps_visual_255, steps, seed, bool(paper))
        analysis = run(clip, model, defense, attack, settings, target, truth, _device())
    except ValueError as error:
        raise gr.Error(str(error)) from error
    progress(0.8, desc="rendering")
    clean_audio, adversarial_audio, perturbation_audio, gain_note = views.audio_tracks(analysis)
    perturbation, perturbation_note = views.perturbation_image(analysis)
    folder = Path(tempfile.mkdtemp(prefix="avdemo-"))
    video_path = write_mp4(folder / "adversarial.mp4", analysis.adversarial_frames, analysis.adversarial_waveform)
    bundle = write_bundle(analysis, folder, model, defense, attack, settings, target,
                          {"video": video, "image": image, "sound": sound})
    return (
        views.summary_markdown(analysis),
        views.top_k_figure(analysis),
        views.heatmap_overlays(analysis, attacked=False),
        views.heatmap_overlays(analysis, attacked=True),
        perturbation,
        perturbation_note,
        clean_audio,
        adversarial_audio,
        perturbation_audio,
        gain_note,
        views.sound_figure(analysis),
        views.trace_figure(analysis),
        views.tsne_figure(analysis) if analysis.embeddings else None,
        str(video_path),
        [(frame, f"frame {i + 1} the model sees") for i, frame in enumerate(clip.frames)],
        [str(path) for path in bundle],
    )


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


def build_app() -> gr.Blocks:
    """The page; `app.py` launches it."""
    examples = example_paths()
    models = model_choices()
    classes = describe(models[0])["classes"] if models else []
    with gr.Blocks(title="avdemo: attacking audio-visual models") as demo:
        gr.Markdown(
            "# avdemo: how audio-visual models and their sound localization fail under attack\n"
            "Pick an example (or upload a video), a model, a defense and an attack, then **Run**. "
            "Heatmaps show where the model thinks the sound comes from; the green box is where it really does. "
            "Based on Tian & Xu, *Can audio-visual integration strengthen robustness under multimodal attacks?* (CVPR 2021)."
        )
        with gr.Tab("Attack"):
            with gr.Row():
                with gr.Column(scale=1):
                    gallery = gr.Gallery(value=thumbnails(examples), label="Examples (click one)", columns=4, height=260,
                                         allow_preview=False, object_fit="cover", elem_id="examples")
                    lesson = gr.Markdown()
                    video = gr.Video(label="Video", sources=["upload"], height=240)
                    with gr.Accordion("…or an image with a sound file", open=False):
                        image = gr.Image(label="Image", type="filepath", sources=["upload"], height=160)
                        sound = gr.Audio(label="Sound (optional)", type="filepath", sources=["upload"])
                    model = gr.Dropdown(models, value=models[0], label="Model")
                    defense = gr.Dropdown(defense_choices(), value=NO_DEFENSE,
                                          label=f"Defense (built on {BASE_MODEL}, as in the paper; attacked with every objective)")
                    attack = gr.Dropdown(available_attacks(), value="pgd", label="Attack")
                    modality = gr.Radio(list(MODALITIES), value="both", label="Attacked modality")
                    eps_audio = gr.Slider(0, 0.05, value=0.006, step=0.0005, label="ε audio (waveform amplitude)")
                    snr = gr.Markdown()
                    eps_visual = gr.Slider(0, 16, value=2, step=0.05, label="ε visual (grey levels, /255)")
                    steps = gr.Slider(1, 50, value=10, step=1, label="Steps (iterative attacks)")
                    target = gr.Dropdown(["none", *classes], value="none", label="Target class (targeted attack)")
                    seed = gr.Number(value=0, precision=0, label="Seed (PGD random start)")
                    with gr.Row():
                        preset = gr.Button("Paper preset")
                        run_button = gr.Button("Run", variant="primary")
                    paper = gr.Checkbox(value=False, label="Use the paper preset exactly (per-channel ε)")
                    preset_note = gr.Markdown()
                with gr.Column(scale=2):
                    summary = gr.Markdown()
                    top_k = gr.Plot(label="Predictions")
                    with gr.Row():
                        clean_maps = gr.Gallery(label="Localization, clean", columns=2, height=300, object_fit="contain", elem_id="clean-maps")
                        attacked_maps = gr.Gallery(label="Localization, attacked", columns=2, height=300, object_fit="contain", elem_id="attacked-maps")
                    with gr.Row():
                        perturbation = gr.Image(label="Visual perturbation (amplified)", height=240)
                        perturbation_note = gr.Markdown()
                    with gr.Row():
                        clean_audio = gr.Audio(label="Clean sound (true level)", elem_id="clean-audio")
                        adversarial_audio = gr.Audio(label="Adversarial sound (true level)", elem_id="adversarial-audio")
                        perturbation_audio = gr.Audio(label="Perturbation (amplified)", elem_id="perturbation-audio")
                    gain_note = gr.Markdown()
                    sound_plot = gr.Plot(label="Waveform and spectrograms")
                    trace_plot = gr.Plot(label="Attack trace")
                    tsne_plot = gr.Plot(label="t-SNE embeddings", elem_id="tsne")
                    adversarial_video = gr.Video(label="Adversarial video (H.264 + AAC, lossy: for watching; the exact input is the .npz below)",
                                                 height=240)
                    take_away = gr.File(label="The adversarial input, lossless (adversarial.npz) and how it was made "
                                                  "(run.json: settings, weights SHA-256, the command that makes it again)",
                                        file_count="multiple", elem_id="take-away")
                    inputs_seen = gr.Gallery(label="What the model receives", columns=4, height=200, object_fit="contain",
                                             allow_preview=False)
        with gr.Tab("Robustness"):
            gr.Markdown("## The model zoo\n" + model_cards_markdown())
            gr.Markdown(reports_markdown())

        outputs = [summary, top_k, clean_maps, attacked_maps, perturbation, perturbation_note, clean_audio,
                   adversarial_audio, perturbation_audio, gain_note, sound_plot, trace_plot, tsne_plot, adversarial_video,
                   inputs_seen, take_away]
        run_button.click(run_attack, inputs=[video, image, sound, model, defense, attack, modality, eps_audio, eps_visual,
                                             steps, target, seed, paper], outputs=outputs, api_name="run")
        preset.click(paper_preset_values, inputs=[modality], outputs=[eps_audio, eps_visual, steps, paper, preset_note],
                     api_name="paper_preset")
        for slider in (eps_visual, steps):
            slider.input(lambda: False, outputs=[paper], api_visibility="private")
        eps_audio.input(lambda: False, outputs=[paper], api_visibility="private")
        eps_audio.change(snr_hint, inputs=[video, image, sound, eps_audio], outputs=[snr], api_visibility="private")
        video.change(snr_hint, inputs=[video, image, sound, eps_audio], outputs=[snr], api_visibility="private")
        gallery.select(choose_example, outputs=[video, lesson], api_visibility="private")
    return demo


def warm_up() -> None:
    """Run the default model once so the first person does not pay for loading and t-SNE fitting."""
    examples = example_paths()
    if examples and list_models():
        clip, truth = load_input(str(examples[0]), frames=model_frames(BASE_MODEL))
        run(clip, truth=truth, settings=attack_settings("both", 0.006, 2, 10, 0, False), device=_device())


def launch(demo: gr.Blocks, warm: bool = True, **kwargs) -> None:
    """Serve with a queue (runs are CPU-heavy: a few at a time) and upload limits; warm up in
    the background so the page is usable at once."""
    if warm:
        threading.Thread(target=warm_up, daemon=True).start()
    demo.queue(default_concurrency_limit=int(os.environ.get("AVDEMO_CONCURRENCY", "2")), max_size=32)
    demo.launch(max_file_size=f"{MAX_UPLOAD_MB}mb", **kwargs)

