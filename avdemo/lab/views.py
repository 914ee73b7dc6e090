"""What a person sees of an `Analysis`: figures (plotly) and images (numpy RGB uint8).

Every function here is pure: an analysis (numpy only) in, a figure or an image out, so each
view can be tested without a browser and never touches torch or a device.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import SAMPLE_RATE
from ..attacks import attack_parameters
from ..data.masking import masked_count
from ..measures.localization import MAP_KINDS, peaks
from ..models.segments import window_length, window_starts
from .analysis import PEAK_MOVED, Analysis

TOP_K = 5
PLOT_MARGIN = {"l": 40, "r": 10, "t": 40, "b": 40}
HEATMAP_COLOURS = cv2.COLORMAP_VIRIDIS
MODALITY_SYMBOLS = {"audio": "circle", "visual": "triangle-up", "fused": "square"}
TARGET_COLOUR = (255, 60, 255)  # magenta: apart from the green source, the white silent objects and viridis
AUDIO_BAR_COLOUR = (90, 200, 255)  # light blue: the audio perturbation's level in a segment's window
CHANGE_COLOURS = cv2.COLORMAP_MAGMA  # a frame's amplified |change|, apart from the maps' viridis: black = none
CHANGE_BLOCK = 8  # px: the |change| is averaged over blocks this wide (where it is, not its pattern, which as
# pixel noise tripled the strip's JPEG: +130 kB for 4 segments, against +11 kB in blocks)
AUDIO_BAR_HEIGHT = 6
FEATURE_SERIES = (("temporal_variance", "how much the features change over time"),
                  ("modality_cosine", "audio-visual agreement (cosine)"))
FEATURE_TERMS = ("lambda_temporal", "lambda_misalign")  # settings of the attacks whose objective has those terms
MASK_MODE_NAMES = {"visual": "the video only", "audio": "the audio only", "both-sync": "both, at the same moments",
                   "both-async": "both, at different moments"}
"""`avdemo.data.masking.MODES` in words."""


def top_k_figure(analysis: Analysis) -> go.Figure:
    """Clean vs attacked probabilities of the top classes, the true label marked."""
    clean, attacked = analysis.clean_probabilities, analysis.attacked_probabilities
    order = [int(i) for i in np.argsort(-(np.maximum(clean, attacked)))[:TOP_K]]
    truth = analysis.truth.label if analysis.truth else None
    names = [f"{analysis.classes[i]} ✔ (true)" if analysis.classes[i] == truth else analysis.classes[i] for i in order]
    figure = go.Figure()
    figure.add_bar(y=names, x=clean[order], orientation="h", name="clean", marker_color="#4c78a8")
    figure.add_bar(y=names, x=attacked[order], orientation="h", name=analysis.after, marker_color="#e45756")
    figure.update_layout(height=300, margin=PLOT_MARGIN, barmode="group", xaxis={"range": [0, 1], "title": "probability"},
                         yaxis={"autorange": "reversed"}, title=f"Top classes: clean vs {analysis.after}",
                         legend={"orientation": "h"})
    return figure


def _draw_box(image: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], thickness: int = 2, name: str = "",
              below: bool = False) -> None:
    """A box with a dark outline (visible on any colour of the map) and its name written above
    it (or inside along its bottom edge), so that which box is which never rests on colour alone."""
    if np.isnan(box).any():
        return
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 0), thickness + 2)
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), colour, thickness)
    if name:
        at = (x0 + 3, min(y1 - 5, image.shape[0] - 24)) if below else (x0 + 2, max(y0 - 4, 10))
        cv2.putText(image, name, at, cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, name, at, cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, 1, cv2.LINE_AA)


def _boxes(image: np.ndarray, truth, index: int, target: np.ndarray | None) -> None:
    """The sounding object's box (green), the silent ones' (white) and the map attack's target
    (magenta, labelled inside), in place on frame `index`."""
    if truth is not None:
        for box, label in zip(truth.distractor_box[index], truth.distractor_labels):
            _draw_box(image, box, (255, 255, 255), 1, f"silent {label}")
        _draw_box(image, truth.box[index], (0, 255, 0), 2, "sounding")
    if target is not None:
        _draw_box(image, target, TARGET_COLOUR, 2, "target", below=True)


def _overlay(frame: np.ndarray, heat: np.ndarray, truth, index: int, target: np.ndarray | None = None) -> np.ndarray:
    """One frame `(S, S, 3)` in [0, 1] under its map `(S, S)` in [0, 1] (viridis: perceptually
    uniform and readable with colour-blindness, where JET draws false edges), with the boxes
    (`_boxes`) and the map's peak (cross)."""
    colour = cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), HEATMAP_COLOURS)[..., ::-1]
    image = np.ascontiguousarray(np.round(0.55 * np.clip(frame, 0, 1) * 255 + 0.45 * colour).astype(np.uint8))
    _boxes(image, truth, index, target)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    cv2.drawMarker(image, (int(x), int(y)), (255, 255, 255), cv2.MARKER_CROSS, 14, 2)
    return image


def segment_verdict(verdict: dict) -> str:
    """A segment's pointing verdict in a word or two: where the map's peak is."""
    if verdict["hit"]:
        return "source"
    return f"silent {verdict['on']}" if verdict["distractor"] else "off objects"


def _banner(image: np.ndarray, text: str, colour: tuple[int, int, int]) -> None:
    """Write `text` on a dark band along the bottom of a tile, in place."""
    height = 20
    image[-height:] = (image[-height:] * 0.35).astype(np.uint8)
    cv2.putText(image, text, (5, image.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)


def _factor(gain: float) -> str:
    return f"{gain:.0f}" if gain >= 10 else f"{gain:.2g}"


def segment_audio_levels(analysis: Analysis) -> tuple[np.ndarray, str]:
    """The audio perturbation (`delta_waveform`) in each segment's window, the samples the model
    hears with frame t (`avdemo.models.segments`), as its RMS in dB `(T,)` relative to the clean
    clip's RMS, and the unit: "dB" (re the clip), or "dBFS" (re full scale) for a silent clip;
    -inf where the window is untouched."""
    delta, clean = analysis.delta_waveform.astype(np.float64), analysis.clip.waveform.astype(np.float64)
    steps, total = len(analysis.clip.frames), len(delta)
    length = window_length(total, steps)
    rms = np.array([np.sqrt(np.mean(delta[max(0, start): min(total, start + length)] ** 2))
                    for start in window_starts(total, steps)])
    level = float(np.sqrt(np.mean(clean ** 2)))
    reference, unit = (level, "dB") if level > 0 else (1.0, "dBFS")
    with np.errstate(divide="ignore"):
        return 20 * np.log10(rms / reference), unit


def _perturbation_row(analysis: Analysis) -> np.ndarray:
    """Each segment's perturbation, side by side `(S, T S, 3)` uint8: its frame's change |delta|
    (mean over RGB) averaged over `CHANGE_BLOCK`-pixel blocks and amplified by one gain for every
    segment (the largest pixel change = 1, the gain written on the tile; magma: black = no change);
    a light-blue bar on a dark band along the top, as long as its audio perturbation's RMS is
    against the strongest segment's, and that level in dB (`segment_audio_levels`): where in time
    the attack put its energy shows at a glance."""
    magnitude = np.abs(analysis.delta_frames).mean(axis=-1)  # (T, S, S)
    peak = float(magnitude.max())
    gain = 1 / peak if peak > 0 else 0.0
    size = magnitude.shape[-1]
    levels, unit = segment_audio_levels(analysis)
    strongest = levels.max()
    band = AUDIO_BAR_HEIGHT + 4
    tiles = []
    for change, level in zip(magnitude, levels):
        blocks = cv2.resize(change, (size // CHANGE_BLOCK,) * 2, interpolation=cv2.INTER_AREA)
        shown = cv2.resize(blocks, (size, size), interpolation=cv2.INTER_NEAREST)
        tile = np.ascontiguousarray(cv2.applyColorMap(np.round(np.clip(shown * gain, 0, 1) * 255).astype(np.uint8),
                                                      CHANGE_COLOURS)[..., ::-1])
        heard = bool(np.isfinite(level))
        tile[:band] = (tile[:band] * 0.35).astype(np.uint8)
        if heard:
            width = max(1, round(size * 10 ** ((level - strongest) / 20)))
            tile[2: band - 2, :width] = AUDIO_BAR_COLOUR
        frames_text = f"|change| x{_factor(gain)}" if peak > 0 else "frames kept"
        _banner(tile, f"{frames_text}, {f'audio {level:+.0f} {unit}' if heard else 'audio kept'}", (255, 255, 255))
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def segment_strip(analysis: Analysis) -> np.ndarray | None:
    """The maps of every segment side by side, clean above attacked (or masked), and below them
    the perturbation of each segment (`_perturbation_row`): `(3 S, T S, 3)` uint8. Each map tile
    carries the ground-truth boxes and, where the clip has them, its pointing verdict (green: on
    the source, orange: elsewhere). Every map is min-max normalised and coloured on the same 0-1
    viridis scale, so strips of two models compare directly. None without a map."""
    if analysis.clean_maps is None:
        return None
    rows = []
    for attacked, maps, frames in ((False, analysis.clean_maps, analysis.clip.frames / 255),
                                   (True, analysis.attacked_maps, analysis.adversarial_frames)):
        verdicts = analysis.localization_verdicts(maps)
        tiles = []
        for index, (frame, heat) in enumerate(zip(frames, maps)):
            target = analysis.target_boxes[index] if analysis.target_boxes is not None else None
            tile = _overlay(frame, heat, analysis.truth, index, target)
            text = f"{analysis.after if attacked else 'clean'} {index + 1}"
            colour = (255, 255, 255)
            if verdicts:
                text += ": " + segment_verdict(verdicts[index])
                colour = (120, 230, 120) if verdicts[index]["hit"] else (255, 170, 60)
            _banner(tile, text, colour)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, axis=1))
    rows.append(_perturbation_row(analysis))
    strip = np.concatenate(rows, axis=0)
    size = analysis.clean_maps.shape[-1]
    for edge in range(size, strip.shape[0], size):
        strip[edge - 1: edge + 1] = 255  # a white rule between the rows
    return strip


def target_picker(frame: np.ndarray, truth, target: np.ndarray | None) -> np.ndarray:
    """The frame a person clicks to aim the map: `(S, S, 3)` uint8 in, the same with the silent
    objects' boxes (named), the sounding one's and the chosen target `(4,)` px (magenta) drawn."""
    image = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    _boxes(image, truth, 0, target)
    return image


def map_attack_sentence(analysis: Analysis) -> str | None:
    """What an attack on the map moved and what it did not, in one sentence: "The class stayed
    violin; the map moved onto the silent cello in 4 of 4 segments." None for other attacks."""
    done = analysis.map_attack_frames()
    if done is None:
        return None
    clean = analysis.classes[int(analysis.clean_probabilities.argmax())]
    attacked = analysis.classes[int(analysis.attacked_probabilities.argmax())]
    segments, count = len(done), int(done.sum())
    source = f"the sounding {analysis.truth.label}" if analysis.truth else "where it was"
    if analysis.attack == "class-only":
        head = f"The class changed from {clean} to {attacked}" if attacked != clean else f"The class stayed {clean} (not changed)"
        return f"{head}; the map stayed on {source} in {count} of {segments} segments."
    head = f"The class stayed {clean}" if attacked == clean else f"The class changed from {clean} to {attacked} (it was to stay)"
    if analysis.attack == "map-target":
        return f"{head}; the map moved onto {analysis.target_name} in {count} of {segments} segments."
    off = f"off {source}" if analysis.truth else f"away from where it was (more than {PEAK_MOVED:.0%} of the frame)"
    return f"{head}; the map moved {off} in {count} of {segments} segments."


def peak_move_pixels(analysis: Analysis) -> np.ndarray:
    """How far the map's peak moved under attack, per segment `(T,)`, in the model's pixels."""
    return np.linalg.norm(peaks(analysis.clean_maps).astype(float) - peaks(analysis.attacked_maps), axis=1)


def localization_verdict(analysis: Analysis) -> str:
    """One line on what the attack did to the map: kept, moved onto a silent object, or moved
    off every object (with ground truth); otherwise how far its peak moved."""
    if analysis.clean_maps is None:
        return "No map: this model does not localize."
    segments = len(analysis.clean_maps)
    if analysis.truth is None:
        moves = peak_move_pixels(analysis)
        return (f"No ground truth for this clip: the map's peak moved {moves.mean():.0f} px on average "
                f"(at most {moves.max():.0f} px, frames of {analysis.clean_maps.shape[-1]} px).")
    clean = analysis.localization_verdicts(analysis.clean_maps)
    attacked = analysis.localization_verdicts(analysis.attacked_maps)
    before, after = sum(v["hit"] for v in clean), sum(v["hit"] for v in attacked)
    counts = f"(on the {analysis.truth.label} in {after}/{segments} segments {analysis.after}, {before}/{segments} clean)"
    if after >= before:
        return f"Localization kept {counts}."
    silent = [v["on"] for v in attacked if v["distractor"]]
    if silent:
        target = max(set(silent), key=silent.count)
        return f"Localization moved to the silent {target} in {silent.count(target)}/{segments} segments {counts}."
    return f"Localization moved off every object {counts}."


def perturbation_image(analysis: Analysis) -> tuple[np.ndarray | None, str]:
    """The visual perturbation of the first of the most changed frames `(S, S, 3)` uint8,
    amplified to fill the range, and its scale."""
    peaks_per_frame = np.abs(analysis.delta_frames).reshape(len(analysis.delta_frames), -1).max(axis=1)
    index = int(peaks_per_frame.argmax())
    peak = float(peaks_per_frame[index])
    if peak == 0:
        return None, f"The frames were not {analysis.after}."
    gain = 0.5 / peak
    image = np.round(np.clip(0.5 + gain * analysis.delta_frames[index], 0, 1) * 255).astype(np.uint8)
    return image, (f"Perturbation of frame {index + 1}, amplified ×{_factor(gain)} (L∞ = {peak * 255:.2f}/255, "
                   "grey = no change)")


def audio_tracks(analysis: Analysis) -> tuple[tuple[int, np.ndarray], tuple[int, np.ndarray], tuple[int, np.ndarray] | None, str]:
    """Clean and adversarial audio at their true level and the perturbation amplified, as
    (rate, int16) pairs (Gradio plays int16 as is, and peak-normalises float), and the gain."""

    def pcm(samples: np.ndarray) -> tuple[int, np.ndarray]:
        return SAMPLE_RATE, np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)

    clean = analysis.clip.waveform
    adversarial, delta = analysis.adversarial_waveform, analysis.delta_waveform
    peak = float(np.abs(delta).max())
    if peak == 0:
        return pcm(clean), pcm(adversarial), None, f"The sound was not {analysis.after}."
    gain = 0.5 / peak
    note = f"Perturbation amplified ×{_factor(gain)} ({20 * math.log10(gain):+.0f} dB)"
    if analysis.masking is not None:
        note = f"The second player is the masked sound; the third, what the masking removed. {note}"
    return pcm(clean), pcm(adversarial), pcm(gain * delta), note


def _spectrogram(samples: np.ndarray, size: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude in dB `(freqs, frames)` with a Hann window, hop size/2; and the axes. 1024
    samples at 11 kHz: ~10 Hz bins and 46 ms hops, about the resolution the plot shows."""
    hop = size // 2
    count = 1 + (len(samples) - size) // hop
    windows = np.lib.stride_tricks.sliding_window_view(samples, size)[::hop][:count] * np.hanning(size)
    magnitude = np.abs(np.fft.rfft(windows, axis=1)).T
    decibels = 20 * np.log10(np.maximum(magnitude, 1e-6))
    return decibels, np.arange(count) * hop / SAMPLE_RATE, np.fft.rfftfreq(size, 1 / SAMPLE_RATE)


def sound_figure(analysis: Analysis) -> go.Figure:
    """Waveforms (clean, adversarial, perturbation) over time, and spectrograms of the clean
    sound and of the perturbation on one colour scale, so their levels compare directly.
    Arrays are float32 at about the resolution drawn (~1500 points per waveform, 64 frequency
    rows), contiguous so that plotly sends them as base64 rather than as lists of numbers."""
    clean = analysis.clip.waveform
    delta, adversarial = analysis.delta_waveform, analysis.adversarial_waveform
    figure = make_subplots(rows=3, cols=1, vertical_spacing=0.08, row_heights=[0.34, 0.33, 0.33],
                           subplot_titles=("waveform", "spectrogram: clean sound", "spectrogram: perturbation"))
    step = max(1, len(clean) // 1500)
    time_axis = (np.arange(0, len(clean), step) / SAMPLE_RATE).astype(np.float32)
    for name, samples in (("clean", clean), ("adversarial", adversarial), ("perturbation", delta)):
        figure.add_scatter(x=time_axis, y=np.ascontiguousarray(samples[::step], dtype=np.float32), name=name,
                           line={"width": 1}, row=1, col=1)
    low = None
    for row, samples in ((2, clean), (3, delta)):
        decibels, times, freqs = _spectrogram(samples)
        low = decibels.max() - 100 if low is None else low
        rows = max(1, len(freqs) // 64)
        figure.add_heatmap(z=np.ascontiguousarray(decibels[::rows], dtype=np.float32), x=times.astype(np.float32),
                           y=np.ascontiguousarray(freqs[::rows], dtype=np.float32), zmin=low, zmax=low + 100, colorscale="Viridis",
                           showscale=row == 2, colorbar={"title": "dB", "len": 0.6, "y": 0.35}, row=row, col=1)
    figure.update_layout(height=560, margin=PLOT_MARGIN, legend={"orientation": "h", "y": 1.08})
    figure.update_yaxes(title_text="Hz", row=2, col=1)
    figure.update_yaxes(title_text="Hz", row=3, col=1)
    figure.update_xaxes(title_text="seconds", row=3, col=1)
    return figure


def feature_series(analysis: Analysis) -> dict[str, np.ndarray]:
    """The trace's feature statistics `(steps + 1,)` worth drawing, by their plain names: for the
    attacks whose objective holds a temporal or audio-visual term (TIA, MMA, TMA: they take
    `lambda_temporal` or `lambda_misalign`), each series the crafting model has (not all NaN)."""
    if analysis.trace is None or not set(FEATURE_TERMS) & set(attack_parameters(analysis.attack)):
        return {}
    series = {label: getattr(analysis.trace, key) for key, label in FEATURE_SERIES}
    return {label: values for label, values in series.items() if not np.isnan(values).all()}


def trace_figure(analysis: Analysis) -> go.Figure | None:
    """The attack, step by step: its objective, and the probability of the label it fights
    (true class, clean prediction or target) and of the predicted class; for TIA, MMA and TMA a
    second panel with how much the segment features change over time and the audio-visual cosine
    (`feature_series`). None for a run without an attack (a masked clip)."""
    trace = analysis.trace
    if trace is None:
        return None
    steps = np.arange(len(trace.loss))
    series = feature_series(analysis)
    rows = 2 if series else 1
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.14,
                           specs=[[{"secondary_y": True}]] * rows)
    figure.add_scatter(x=steps, y=trace.loss, name="attack objective", mode="lines+markers", row=1, col=1)
    figure.add_scatter(x=steps, y=trace.label_probability, name="P(label attacked)", mode="lines+markers",
                       secondary_y=True, row=1, col=1)
    predicted = [analysis.classes[i] for i in trace.predicted.tolist()]
    figure.add_scatter(x=steps, y=trace.confidence, name="P(predicted class)", mode="lines+markers",
                       text=predicted, hovertemplate="step %{x}: %{text} %{y:.2f}", secondary_y=True, row=1, col=1)
    for (key, label), secondary in zip(FEATURE_SERIES, (False, True)):
        if label in series:
            figure.add_scatter(x=steps, y=series[label], name=label, mode="lines+markers", line={"dash": "dot"},
                               secondary_y=secondary, row=2, col=1)
            figure.update_yaxes(title_text="variance" if key == "temporal_variance" else "cosine",
                                secondary_y=secondary, row=2, col=1)
    figure.update_layout(height=300 + 180 * (rows - 1), margin=PLOT_MARGIN,
                         title=f"Attack trace, objective {analysis.winner} (step 0 = clean input)",
                         legend={"orientation": "h", "y": -0.25 / rows})
    figure.update_xaxes(title_text="step", row=rows, col=1)
    figure.update_yaxes(title_text="objective", secondary_y=False, row=1, col=1)
    figure.update_yaxes(title_text="probability", range=[0, 1], secondary_y=True, row=1, col=1)
    return figure


_REFERENCE_FIGURES: dict[str, dict] = {}  # model name -> the model-only part of its t-SNE figure


def _reference_maps_figure(analysis: Analysis) -> dict:
    """The part of the t-SNE figure that depends only on the model (its reference embeddings,
    legend, symbol key, layout), as a plain dict: built once per model and process, because
    building and validating a plotly figure of ~40 traces costs ~0.1 s, every Run."""
    if analysis.model_name in _REFERENCE_FIGURES:
        return _REFERENCE_FIGURES[analysis.model_name]
    classes = analysis.classes
    figure = make_subplots(rows=1, cols=max(1, len(analysis.embeddings)),
                           subplot_titles=[f"{name} embeddings" for name in analysis.embeddings])
    palette = [f"hsl({int(360 * i / len(classes))},70%,50%)" for i in range(len(classes))]
    for column, placed in enumerate(analysis.embeddings.values(), start=1):
        modalities = placed["modalities"].astype(str)
        for k in np.unique(placed["labels"]).astype(int):
            chosen = placed["labels"] == k
            points = np.ascontiguousarray(placed["reference"][chosen], dtype=np.float32)
            figure.add_scatter(
                x=points[:, 0], y=points[:, 1], mode="markers",
                marker={"color": palette[k], "size": 6, "opacity": 0.55,
                        "symbol": [MODALITY_SYMBOLS.get(m, "circle") for m in modalities[chosen]]},
                text=[f"{classes[k]} ({m})" for m in modalities[chosen]], hoverinfo="text",
                name=classes[k], legendgroup=f"class {k}", showlegend=column == 1, row=1, col=column)
    for modality, symbol in MODALITY_SYMBOLS.items():  # the symbols' key, in the legend
        figure.add_scatter(x=[None], y=[None], mode="markers", marker={"symbol": symbol, "color": "grey", "size": 9},
                           name=f"{modality} (symbol)", legendgroup="symbols", hoverinfo="skip")
    figure.update_layout(height=520, margin=PLOT_MARGIN, legend={"orientation": "h", "y": -0.08},
                         title="t-SNE: test clips by class; this clip clean → attacked (arrow), placed without refitting")
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False)
    return _REFERENCE_FIGURES.setdefault(analysis.model_name, figure.to_plotly_json())


def tsne_figure(analysis: Analysis) -> go.Figure:
    """The model's reference embeddings, one legend entry per class (colour; hover names the
    class and modality) with the modality as symbol, and this clip's embeddings placed into
    the same maps: clean (open symbol) to attacked (filled) drawn as an arrow per modality,
    named on hover rather than printed, so that nothing overlaps. The clip's part is added as
    plain dicts to the cached model part and not validated again (plotly's `_validate=False`)."""
    base = _reference_maps_figure(analysis)
    data, annotations = list(base["data"]), list(base["layout"].get("annotations", ()))
    for column, placed in enumerate(analysis.embeddings.values(), start=1):
        axes = "" if column == 1 else str(column)
        for index, kind in enumerate(placed["kinds"]):
            symbol = MODALITY_SYMBOLS.get(str(kind), "circle")
            (x0, y0), (x1, y1) = placed["clean"][index].tolist(), placed["attacked"][index].tolist()
            for state, (x, y), marker in (("clean", (x0, y0), {"symbol": f"{symbol}-open", "color": "black"}),
                                          ("attacked", (x1, y1), {"symbol": symbol, "color": "black",
                                                                  "line": {"width": 2, "color": "white"}})):
                data.append({"type": "scatter", "x": [x], "y": [y], "mode": "markers", "marker": {**marker, "size": 15},
                             "text": [f"this clip, {state} {kind} embedding"], "hoverinfo": "text",
                             "name": f"this clip, {state}", "legendgroup": state,
                             "showlegend": column == 1 and index == 0, "xaxis": f"x{axes}", "yaxis": f"y{axes}"})
            annotations.append({"x": x1, "y": y1, "ax": x0, "ay": y0, "xref": f"x{axes}", "yref": f"y{axes}",
                                "axref": f"x{axes}", "ayref": f"y{axes}", "showarrow": True, "arrowhead": 2,
                                "arrowsize": 1.2, "arrowwidth": 2, "arrowcolor": "black", "text": "", "standoff": 5,
                                "startstandoff": 5})
    return go.Figure({"data": data, "layout": {**base["layout"], "annotations": annotations}}, _validate=False)


def outcome(analysis: Analysis) -> str:
    """What the attack did to the model, in a few words: "fooled, dog → cow", "not fooled, dog →
    dog", "wrong already on the clean clip, ..." (targeted: fooled when the target is predicted);
    for an attack on the map, what moved and what did not (`map_attack_sentence`)."""
    sentence = map_attack_sentence(analysis)
    if sentence:
        return sentence[0].lower() + sentence[1:].rstrip(".")
    clean = analysis.classes[int(analysis.clean_probabilities.argmax())]
    attacked = analysis.classes[int(analysis.attacked_probabilities.argmax())]
    label = analysis.classes[analysis.label]
    if analysis.targeted:
        return f"{'fooled' if attacked == label else 'not fooled'} (target {label}), {clean} → {attacked}"
    if clean != label:
        return f"wrong already on the clean clip, {clean} → {attacked}"
    return f"{'fooled' if attacked != label else 'not fooled'}, {clean} → {attacked}"


def transfer_sentence(analysis: Analysis) -> str | None:
    """Whether an attack crafted on another model transferred, in one sentence: "Crafted on av-sum
    (white-box: fooled, dog → cow); on av-concat, never touched by the attacker: not fooled, dog →
    dog." None for a white-box run."""
    surrogate = analysis.surrogate
    if surrogate is None:
        return None
    return (f"Crafted on {surrogate.model_name} (white-box: {outcome(surrogate)}); on {analysis.model_name}, never "
            f"touched by the attacker: {outcome(analysis)}.")


def frame_moments(steps: int) -> str:
    """Where T evenly spaced frames sit in a clip (frame t at (t + 0.5) / T), in words: "12.5%, 37.5%, ..."."""
    return ", ".join(f"{(t + 0.5) / steps:.1%}" for t in range(steps))


def masking_sentence(analysis: Analysis) -> str | None:
    """What a masked run hid, in words, and for clips with fewer frames than windows what masking a
    frame means (`avdemo.data.masking`). None for an attack."""
    masking = analysis.masking
    if masking is None:
        return None
    steps, units = len(masking.frames), masking.units
    hidden = [str(index + 1) for index in np.flatnonzero(masking.frames)]
    frames = f"frame{'s' if len(hidden) > 1 else ''} {', '.join(hidden)}" if hidden else "no frame"
    text = (f"No attack: {masking.share:.0%} of the clip's time masked in {MASK_MODE_NAMES[masking.mode]} "
            f"({masked_count(masking.share, units)} of {units} windows of {1 / units:.0%}, draw {masking.seed}): "
            f"{frames} of {steps} replaced by the ImageNet-mean frame (no signal, to the model), "
            f"{masking.samples.mean():.0%} of the sound silenced.")
    if steps < units:
        window = len(masking.samples) / units / analysis.clip.sample_rate
        text += (f" With {steps} frames (at {frame_moments(steps)} of the clip) a masked window silences {window:.2f} s of sound "
                 "but hides a frame only when that frame's moment falls in it.")
    return text


def summary_markdown(analysis: Analysis) -> str:
    """Predictions, verdicts and perceptibility in a few lines."""
    clean = analysis.classes[int(analysis.clean_probabilities.argmax())]
    attacked = analysis.classes[int(analysis.attacked_probabilities.argmax())]
    p = analysis.perceptibility
    state = "once masked" if analysis.masking is not None else "under attack"
    lines = [f"**{analysis.model_name}**: clean prediction **{clean}**, {state} **{attacked}**"
             + (f" (true: **{analysis.truth.label}**)" if analysis.truth else "")]
    for sentence in (transfer_sentence(analysis), map_attack_sentence(analysis)):
        if sentence:
            lines.append(f"- **{sentence}**")
    if analysis.masking is not None:
        lines.append(f"- {masking_sentence(analysis)}")
    for notes in analysis.notes:
        lines.append(f"- {notes}")
    if len(analysis.objectives) > 1:
        tried = "; ".join(f"{o.name} → {o.predicted} (P(label) {o.label_probability:.2f}, {o.seconds:.2f} s)"
                          for o in analysis.objectives)
        lines.append(f"- Defended model: attacked with {len(analysis.objectives)} objectives in turn; the worst for the "
                     f"model on this clip was **{analysis.winner}**, shown here. Tried: {tried}")
    lines.append(f"- Visual perturbation: L∞ {p['linf_255']:.2f}/255, PSNR {p['psnr_db']:.1f} dB, SSIM {p['ssim']:.4f}")
    lines.append(f"- Audio perturbation: L∞ {p['audio_linf']:.4f}, SNR {p['snr_db']:.1f} dB, dB_x {p['db_x']:.1f} dB")
    if analysis.truth is not None and analysis.clean_maps is not None:
        clean_hits = sum(v["hit"] for v in analysis.localization_verdicts(analysis.clean_maps))
        attacked_hits = sum(v["hit"] for v in analysis.localization_verdicts(analysis.attacked_maps))
        frames = len(analysis.clean_maps)
        lines.append(f"- Pointing game: {clean_hits}/{frames} frames on the source clean, {attacked_hits}/{frames} {analysis.after}")
    if analysis.map_kind is not None:
        lines.append(f"- The map is the {MAP_KINDS[analysis.map_kind]}.")
    return "\n".join(lines)


CLASSWISE_PANELS = (("convexity_input", "input convexity κ_c"), ("log_density_fused", "log density ρ_c (fused features)"))
"""The class-wise figure's x axes, left and right: report keys (`reports/classwise.json`) and their names."""
CLASSWISE_COLUMNS = ("class", "clean acc", "robust acc", "drop", "κ input", "κ audio", "κ visual", "log density fused")
CLASSWISE_KEYS = ("clean_accuracy", "robust_accuracy", "drop", "convexity_input", "convexity_audio", "convexity_visual",
                  "log_density_fused")
"""The report's keys behind `CLASSWISE_COLUMNS` (after the class)."""
CLASS_COLOUR = "#7f93ad"  # grey-blue: every class but the clip's
HIGHLIGHT_COLOUR = "#f58518"  # orange: the clip's class, apart from the grey-blue and the blue fit line
HIGHLIGHT_MARK = "▶ "


def report_value(value) -> float | None:
    """A report's number as a float, or None where it is missing, null or NaN (a class without
    the value: too few clips, or a convexity with no pair to test)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _trend_title(name: str, trend: dict | None, shown: int, left_out: int) -> str:
    """A panel's title: what is drawn against the drop, the rank correlation it rests on (Spearman,
    since a handful of classes and a skewed density make a linear r fragile) and how many classes."""
    trend = trend or {}
    rho, p, n = report_value(trend.get("spearman")), report_value(trend.get("spearman_p")), trend.get("n")
    stats = f"Spearman ρ_s = {rho:+.2f}, p = {p:.2g}, n = {n}" if rho is not None and p is not None else "no trend"
    missing = f"; {left_out} class{'es' if left_out != 1 else ''} without a value left out" if left_out else ""
    return f"drop vs {name}<br><sup>{stats} ({shown} classes drawn{missing})</sup>"


def classwise_figure(report: dict, highlight: str | None) -> go.Figure:
    """Does a class fall under attack the more, the less convex or the sparser it is? Each class's
    accuracy drop under attack (clean - robust) against its input convexity κ_c (left) and the log
    density of its fused features ρ_c (right), one marker per class, named beside it and on hover,
    with the report's least-squares line over the classes' x range and its Spearman correlation in
    the panel's title. The clip's class (`highlight`) is drawn larger and orange, every other one
    grey-blue, so where this clip's class stands among the rest shows at a glance. A class whose x or
    drop is missing or NaN is left out of that panel (and counted in its title), never drawn at 0."""
    rows = report.get("per_class", [])
    trends = report.get("trend", {})
    panels = []
    for key, name in CLASSWISE_PANELS:
        points = [(row["class"], report_value(row.get(key)), report_value(row.get("drop"))) for row in rows]
        kept = [point for point in points if point[1] is not None and point[2] is not None]
        panels.append((key, name, kept, len(points) - len(kept)))
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=[_trend_title(name, trends.get(key), len(kept), left_out)
                                           for key, name, kept, left_out in panels])
    for column, (key, name, kept, _) in enumerate(panels, start=1):
        for chosen in (False, True):
            shown = [point for point in kept if (point[0] == highlight) == chosen]
            if not shown:
                continue
            classes, xs, drops = (list(values) for values in zip(*shown))
            figure.add_scatter(
                x=xs, y=drops, mode="markers+text", text=classes, textposition="top center",
                textfont={"size": 12 if chosen else 9, "color": HIGHLIGHT_COLOUR if chosen else "#555"},
                marker={"color": HIGHLIGHT_COLOUR if chosen else CLASS_COLOUR, "size": 16 if chosen else 9,
                        "line": {"width": 1, "color": "black" if chosen else "white"}},
                hovertext=[f"{c}: drop {d:.2f}, {name} {x:.3g}" for c, x, d in shown], hoverinfo="text",
                name=f"{highlight} (this clip's class)" if chosen else "other classes",
                legendgroup="highlight" if chosen else "classes", showlegend=column == 1, row=1, col=column)
        trend = trends.get(key) or {}
        slope, intercept = report_value(trend.get("slope")), report_value(trend.get("intercept"))
        if kept and slope is not None and intercept is not None:
            ends = [min(point[1] for point in kept), max(point[1] for point in kept)]
            figure.add_scatter(x=ends, y=[slope * x + intercept for x in ends], mode="lines",
                               line={"color": "#4c78a8", "dash": "dash", "width": 2}, name="least-squares line",
                               legendgroup="trend", showlegend=column == 1, hoverinfo="skip", row=1, col=column)
        figure.update_xaxes(title_text=name, row=1, col=column)
    figure.update_yaxes(title_text="accuracy drop under attack (clean - robust)", row=1, col=1)
    classes = len(report.get("classes") or rows)
    figure.update_layout(height=460, margin={**PLOT_MARGIN, "t": 100}, legend={"orientation": "h", "y": -0.18},
                         title=f"Class-wise robustness of {report.get('model', '?')} on {report.get('split', '?')}: "
                               f"{report.get('clips_per_class', '?')} clips per class, {classes} classes")
    return figure


def classwise_table(report: dict, highlight: str | None) -> list[list]:
    """The report's numbers per class as rows of `CLASSWISE_COLUMNS` (for a `gr.Dataframe`), the
    clip's class first and marked "▶", the others in the report's order; values rounded to three
    decimals, None where the report has none (NaN)."""
    first, rest = [], []
    for row in report.get("per_class", []):
        chosen = row["class"] == highlight
        values = [None if (value := report_value(row.get(key))) is None else round(value, 3) for key in CLASSWISE_KEYS]
        (first if chosen else rest).append([f"{HIGHLIGHT_MARK}{row['class']}" if chosen else row["class"], *values])
    return first + rest
