"""The Gradio app: pick a video, a model and an attack; see what the model receives and how
its prediction changes. Handlers are plain functions, testable without a browser.

Until the model zoo is trained and shipped in `checkpoints/`, the networks here are the
real architectures with seeded random weights, and the page says so.
"""

from __future__ import annotations

import functools
import os

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from . import NUM_SAMPLES, SAMPLE_RATE
from .attacks import available_attacks, create_attack
from .media import MediaError, decode_clip
from .models import ARCHITECTURES, architecture_config, build_model

MAX_UPLOAD_MB = 200
SHIPPED_WIDTH = 0.25
NUM_CLASSES = 18
TOP_K = 5
MODALITIES = ("audio", "visual", "both")


@functools.lru_cache(maxsize=len(ARCHITECTURES))
def untrained_model(name: str) -> torch.nn.Module:
    """The named architecture at the shipped width with seeded random weights (no checkpoint yet)."""
    torch.manual_seed(0)
    return build_model(architecture_config(name, NUM_CLASSES, SHIPPED_WIDTH)).eval()


def class_names() -> list[str]:
    return [f"class {index}" for index in range(NUM_CLASSES)]


def _top_k(logits: torch.Tensor) -> dict[str, float]:
    probabilities = torch.softmax(logits, dim=-1)
    values, indices = probabilities.topk(TOP_K)
    names = class_names()
    return {names[i]: float(v) for v, i in zip(values.tolist(), indices.tolist())}


def _as_int16(waveform: np.ndarray) -> tuple[int, np.ndarray]:
    """(rate, int16 samples): Gradio plays int16 at its true level (float arrays are peak-normalised)."""
    return SAMPLE_RATE, np.round(np.clip(waveform, -1, 1) * 32767).astype(np.int16)


def snr_db(signal: np.ndarray, perturbation: np.ndarray) -> float:
    """20 log10(||x|| / ||delta||); +inf when nothing was added."""
    noise = float(np.linalg.norm(perturbation))
    return float("inf") if noise == 0 else 20 * np.log10(max(float(np.linalg.norm(signal)), 1e-12) / noise)


def waveform_figure(clean: np.ndarray, perturbation: np.ndarray) -> go.Figure:
    """The waveform the model hears and the perturbation added to it, over time in seconds."""
    step = max(1, len(clean) // 4000)
    time = np.arange(0, len(clean), step) / SAMPLE_RATE
    figure = go.Figure()
    figure.add_scatter(x=time, y=clean[::step], name="clean waveform", line={"width": 1})
    figure.add_scatter(x=time, y=perturbation[::step], name="perturbation", line={"width": 1})
    figure.update_layout(height=260, margin={"l": 40, "r": 10, "t": 30, "b": 40}, xaxis_title="seconds")
    return figure


def budgets(modality: str, eps_audio: float, eps_visual_255: float) -> dict[str, float]:
    """Attack budgets from the UI's units (waveform amplitude, pixel levels out of 255)."""
    if modality not in MODALITIES:
        raise gr.Error(f"Choose a modality among {', '.join(MODALITIES)}.")
    return {
        "eps_audio": float(eps_audio) if modality in ("audio", "both") else 0.0,
        "eps_visual": float(eps_visual_255) / 255 if modality in ("visual", "both") else 0.0,
    }


def analyse(
    video: str | None,
    model_name: str,
    attack_name: str,
    modality: str,
    eps_audio: float,
    eps_visual_255: float,
    steps: int,
):
    """Decode `video`, run the model clean and under attack, and return what the page shows:
    frames, waveform plot, clean and adversarial audio, clean and attacked top-k, a summary."""
    if not video:
        raise gr.Error("Upload a video first.")
    try:
        clip = decode_clip(video, max_bytes=MAX_UPLOAD_MB * 2**20)
    except MediaError as error:
        raise gr.Error(str(error)) from error
    if model_name not in ARCHITECTURES:
        raise gr.Error(f"Unknown model {model_name!r}.")
    model = untrained_model(model_name)
    waveform, frames = clip.model_inputs()
    with torch.no_grad():
        clean = model(waveform, frames)
    kwargs = budgets(modality, eps_audio, eps_visual_255)
    if attack_name != "fgsm":
        kwargs["steps"] = int(steps)
    try:
        attack = create_attack(attack_name, model, **kwargs)
    except (ValueError, TypeError) as error:
        raise gr.Error(str(error)) from error
    result = attack(waveform, frames, clean.logits.argmax(-1))
    perturbation = result.delta_waveform[0].numpy()
    notes = [
        "**Untrained weights:** no trained checkpoint is shipped yet, so the classes and "
        "predictions are placeholders from a randomly initialised network of the real architecture."
    ]
    if not clip.has_audio:
        notes.append("**This file has no audio track:** the model hears silence.")
    notes.append(
        f"Perturbation: L∞ audio {np.abs(perturbation).max():.4f} (SNR {snr_db(clip.waveform, perturbation):.1f} dB), "
        f"L∞ visual {result.delta_frames.abs().max().item() * 255:.2f}/255. "
        f"Input: {clip.info.width}x{clip.info.height} {clip.info.container}, {clip.info.duration:.1f} s, "
        f"{NUM_SAMPLES} samples at {SAMPLE_RATE} Hz."
    )
    return (
        list(clip.frames),
        waveform_figure(clip.waveform, perturbation),
        _as_int16(clip.waveform),
        _as_int16(result.waveform[0].numpy()),
        _top_k(clean.logits[0]),
        _top_k(result.output.logits[0]),
        "\n\n".join(notes),
    )


def build_app() -> gr.Blocks:
    """The page; `app.py` launches it."""
    with gr.Blocks(title="avdemo: attacking audio-visual models") as demo:
        gr.Markdown("# avdemo\nAdversarial attacks on audio-visual event recognition (Tian & Xu, CVPR 2021).")
        with gr.Row():
            with gr.Column():
                video = gr.File(label="Video", file_types=["video"], type="filepath")
                model_name = gr.Dropdown(list(ARCHITECTURES), value="av-concat", label="Model")
                attack_name = gr.Dropdown(available_attacks(), value="pgd", label="Attack")
                modality = gr.Radio(list(MODALITIES), value="both", label="Attacked modality")
                eps_audio = gr.Slider(0, 0.1, value=0.006, step=0.001, label="ε audio (waveform amplitude)")
                eps_visual = gr.Slider(0, 16, value=2, step=0.25, label="ε visual (pixel levels, /255)")
                steps = gr.Slider(1, 50, value=10, step=1, label="Steps (iterative attacks)")
                run = gr.Button("Run", variant="primary")
            with gr.Column():
                summary = gr.Markdown()
                with gr.Row():
                    clean_top = gr.Label(label="Clean prediction", num_top_classes=TOP_K)
                    attacked_top = gr.Label(label="Under attack", num_top_classes=TOP_K)
                frames = gr.Gallery(label="Frames the model sees (224 x 224)", columns=4, height=240)
                plot = gr.Plot(label="Waveform the model hears")
                with gr.Row():
                    clean_audio = gr.Audio(label="Clean audio (true level)")
                    adversarial_audio = gr.Audio(label="Adversarial audio (true level)")
        run.click(
            analyse,
            inputs=[video, model_name, attack_name, modality, eps_audio, eps_visual, steps],
            outputs=[frames, plot, clean_audio, adversarial_audio, clean_top, attacked_top, summary],
            api_name="analyse",
        )
    return demo


def launch(demo: gr.Blocks, **kwargs) -> None:
    """Serve with a queue (one attack at a time per worker) and an upload size limit."""
    demo.queue(default_concurrency_limit=int(os.environ.get("AVDEMO_CONCURRENCY", "1")))
    demo.launch(max_file_size=f"{MAX_UPLOAD_MB}mb", **kwargs)
