"""Temporal masking (ICLR 2025 Figure 1): the primitive's windows, modes, fill, seeds, gradients and
errors; the evaluation's segment shortcut against the masked clip; its findings' rules; one tiny run."""

from __future__ import annotations

import math

import pytest
import torch

from avdemo.data.masking import (
    IMAGENET_MEAN,
    MODES,
    apply_mask,
    draw_mask,
    frame_windows,
    masked_count,
    temporal_mask,
    window_bounds,
)
from avdemo.evaluation import masking as evaluation
from avdemo.evaluation.intervals import wilson_interval
from avdemo.models import ModelConfig, build_model

UNITS = 20


def clip(batch=2, samples=4000, steps=20, size=8):
    generator = torch.Generator().manual_seed(1)
    waveform = torch.rand(batch, samples, generator=generator) * 1.8 - 0.9 + 0.05  # no sample is 0
    frames = torch.rand(batch, steps, 3, size, size, generator=generator)
    return waveform, frames


@pytest.mark.parametrize("share", [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0])
def test_the_share_of_masked_windows_samples_and_frames(share):
    waveform, frames = clip()
    k = masked_count(share, UNITS)
    assert k == round(share * UNITS)
    masked_w, masked_f = temporal_mask(waveform, frames, share, "both", generator=0)
    assert ((masked_w == 0).sum(dim=1) == k * waveform.shape[1] // UNITS).all()  # 4000 samples: 200 per window
    hidden = (masked_f != frames).flatten(2).any(dim=2)
    assert (hidden.sum(dim=1) == k).all()  # T = units: one frame per window
    assert masked_count(0.025) == 1 and masked_count(0.024) == 0  # the nearest window count, halves up


def test_windows_tile_the_clip_and_frames_fall_in_the_window_of_their_time():
    bounds = window_bounds(65535, UNITS)
    assert bounds[0][0] == 0 and bounds[-1][1] == 65535
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert frame_windows(20, 20).tolist() == list(range(20))
    assert frame_windows(4, 20).tolist() == [2, 7, 12, 17]  # frame t at (t + 0.5) / 4 of the clip
    mask = draw_mask(1, 0.5, "visual", generator=3)
    assert mask.frame_mask(4)[0].tolist() == mask.visual[0, [2, 7, 12, 17]].tolist()


def test_synchronous_masks_the_same_windows_and_asynchronous_disjoint_ones():
    for seed in range(5):
        same = draw_mask(3, 0.3, "both", True, generator=seed)
        apart = draw_mask(3, 0.3, "both", False, generator=seed)
        assert torch.equal(same.audio, same.visual) and (same.audio.sum(1) == 6).all()
        assert not (apart.audio & apart.visual).any() and (apart.visual.sum(1) == 6).all()
        assert torch.equal(apart.audio, same.audio)  # the same draw in every mode: paired comparisons
    crowded = draw_mask(4, 0.7, "both", False, generator=0)  # 14 + 14 windows of 20: 8 must be shared
    assert ((crowded.audio & crowded.visual).sum(1) == 8).all() and (crowded.audio | crowded.visual).all()
    everything = draw_mask(1, 1.0, "both", False, generator=0)
    assert everything.audio.all() and everything.visual.all()


def test_one_modality_leaves_the_other_bit_identical_and_fills_with_the_imagenet_mean():
    waveform, frames = clip()
    masked_w, masked_f = temporal_mask(waveform, frames, 0.3, "audio", generator=1)
    assert torch.equal(masked_f, frames)
    silent = draw_mask(2, 0.3, "audio", generator=1).sample_mask(waveform.shape[1])
    assert (masked_w[silent] == 0).all() and torch.equal(masked_w[~silent], waveform[~silent])
    masked_w, masked_f = temporal_mask(waveform, frames, 0.3, "visual", generator=1)
    assert torch.equal(masked_w, waveform)
    hidden = draw_mask(2, 0.3, "visual", generator=1).frame_mask(frames.shape[1])
    assert torch.equal(masked_f[~hidden], frames[~hidden])
    fill = torch.tensor(IMAGENET_MEAN).view(3, 1, 1).expand(3, 8, 8)
    assert all(torch.equal(frame, fill) for frame in masked_f[hidden])
    from avdemo.models.visual_net import IMAGENET_MEAN as MODELS_MEAN

    assert IMAGENET_MEAN == MODELS_MEAN  # the fill is 0 after the models' normalisation
    _, black = temporal_mask(waveform, frames, 0.3, "visual", generator=1, fill=0.0)
    assert (black[hidden] == 0).all()


def test_draws_are_reproducible_with_a_seed_or_a_generator():
    waveform, frames = clip()
    first = temporal_mask(waveform, frames, 0.2, "both", False, generator=7)
    again = temporal_mask(waveform, frames, 0.2, "both", False, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = [draw_mask(1, 0.2, "both", False, generator=seed).audio for seed in range(8)]
    assert len({tuple(o[0].tolist()) for o in other}) > 1  # the seed matters


def test_masking_is_differentiable_and_passes_the_gradient_where_nothing_is_masked():
    waveform, frames = clip(batch=1)
    waveform.requires_grad_(True)
    frames.requires_grad_(True)
    masked_w, masked_f = temporal_mask(waveform, frames, 0.25, "both", False, generator=2)
    (masked_w.sum() + masked_f.sum()).backward()
    mask = draw_mask(1, 0.25, "both", False, generator=2)
    assert torch.equal(waveform.grad, (~mask.sample_mask(waveform.shape[1])).float())
    assert torch.equal(frames.grad, (~mask.frame_mask(20)).float()[:, :, None, None, None].expand_as(frames))


@pytest.mark.parametrize("arguments, message", [
    ((1.2, "both"), "share must lie in \\[0, 1\\]"), ((-0.1, "audio"), "share must lie"),
    ((20, "audio"), "a percentage"), ((math.nan, "both"), "must be a number"), ((True, "both"), "must be a number"),
    (("0.2", "both"), "must be a number"), ((0.2, "video"), "unknown modality 'video'"),
])
def test_bad_shares_and_modalities_are_refused_clearly(arguments, message):
    waveform, frames = clip()
    with pytest.raises(ValueError, match=message):
        temporal_mask(waveform, frames, *arguments)


def test_bad_inputs_are_refused_clearly():
    waveform, frames = clip()
    with pytest.raises(ValueError, match="units"):
        temporal_mask(waveform, frames, 0.2, "both", units=0)
    with pytest.raises(ValueError, match="waveform must be"):
        temporal_mask(waveform[0], frames, 0.2, "both")
    with pytest.raises(ValueError, match="frames must be"):
        temporal_mask(waveform, frames[:, 0], 0.2, "both")
    with pytest.raises(ValueError, match="different numbers of clips"):
        temporal_mask(waveform[:1], frames, 0.2, "both")
    with pytest.raises(ValueError, match="3 values"):
        temporal_mask(waveform, frames, 0.2, "visual", fill=(0.5, 0.5))
    with pytest.raises(ValueError, match="for 1 clips"):
        apply_mask(waveform, frames, draw_mask(1, 0.2, "both"))


def test_spans_for_a_timeline_merge_adjacent_windows():
    mask = draw_mask(1, 0.0, "both")
    mask.audio[0, [2, 3, 7]] = True
    spans = mask.spans(duration=20.0)[0]
    assert spans["audio"] == [(2.0, 4.0), (7.0, 8.0)] and spans["visual"] == []


# ---------------------------------------------------------------------------------------
# The evaluation

SEGMENT = 4096  # the audio network's shortest input


def tiny_model(**options):
    return build_model(ModelConfig(num_classes=3, width=1 / 16, **options)).eval()


def tiny_clip(steps, label=1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {"waveform": torch.rand(steps * SEGMENT, generator=generator) * 2 - 1,
            "frames": torch.rand(steps, 3, 32, 32, generator=generator), "label": label}


@pytest.mark.parametrize("options", [{}, {"attention": True}, {"fusion": "film"}])
def test_segment_states_give_the_logits_of_the_masked_clip(options, monkeypatch):
    monkeypatch.setattr(evaluation, "SHARES", (0.0, 0.25, 0.5))  # 1 and 2 of 4 windows
    model, sample = tiny_model(**options), tiny_clip(4)
    assert evaluation.segments_apply(sample["waveform"], sample["frames"], 4)
    assert not evaluation.segments_apply(sample["waveform"][:-1], sample["frames"], 4)
    assert not evaluation.segments_apply(sample["waveform"], sample["frames"], 20)
    assert evaluation.check_segments(model, sample, 0, units=4) < 1e-4
    fast = evaluation.measure_clip(model, sample, 0, draws=2, method="segments", units=4)
    slow = evaluation.measure_clip(model, sample, 0, draws=2, method="direct", units=4)
    assert fast == slow and set(fast["correct"]) == set(MODES)
    with pytest.raises(ValueError, match="not the clip's 4 segments"):
        evaluation.measure_clip(model, sample, 0, draws=1, method="segments", units=20)


def record(clean=True, sync="1", asynchronous="1", draws=4, label=0):
    shares = [evaluation._key(s) for s in evaluation.SHARES if s > 0]
    bits = {"visual": "1", "audio": "1", "both-sync": sync, "both-async": asynchronous}
    return {"label": label, "clean_pred": label if clean else label + 1, "draws": draws,
            "correct": {mode: {share: bit * draws for share in shares} for mode, bit in bits.items()}}


def hand_made(records, model="m"):
    indices = list(range(len(records)))
    report = {"records": {f"{model}|{'d' * 16}|data|units{UNITS}|{evaluation.FILL}": dict(zip(map(str, indices), records))},
              "stamp": {"indices": indices, "draws": 4, "data": "data", "checkpoints": {model: "d" * 64}, "clips": len(records)}}
    report["results"] = evaluation.results(report, [model], indices, 4, "data", digest=lambda name: "d" * 64)
    return report


def test_the_findings_follow_their_rules():
    clean = [record()] * 30
    report = hand_made(clean[:3] + [record(sync="0")] * 27)  # synchronous masking wrong on 27 of 30 clips
    assert evaluation.half_accuracy_kept(report)[2] == "mixed: holds for m visual, m audio, m both-async; does not hold for m both-sync"
    rule, numbers, verdict = evaluation.synchronous_hurts_more(report)
    assert verdict == "holds" and "27 clips worse / 0 better / 3 tied" in numbers
    report = hand_made([record(asynchronous="0")] * 10 + clean[:20])
    assert evaluation.synchronous_hurts_more(report)[2] == "does not hold"
    report = hand_made([record(sync="0")] * 3 + [record(asynchronous="0")] * 2 + clean[:5])
    assert evaluation.synchronous_hurts_more(report)[2] == "inconclusive at 10 clips"
    assert evaluation.half_accuracy_kept(report)[2] == (  # 70 % and 80 % of 10 clips against half of 100 %
        "mixed: holds for m visual, m audio; inconclusive at 10 clips for m both-sync, m both-async")
    assert evaluation.half_accuracy_kept(hand_made(clean))[2] == "holds"
    assert evaluation.sign_test(0, 10) == pytest.approx(2 / 1024) and evaluation.sign_test(0, 0) == 1.0
    row = evaluation._row(report, "m", "both-sync", 0.2)
    assert row["clips"] == 10 and row["accuracy"] == 0.7
    assert row["interval"] == [round(v, 4) for v in wilson_interval(7, 10)]  # the interval rests on the clips
    assert [item["verdict"] for item in evaluation.findings({})] == ["not measured", "not measured"]
    page = evaluation.markdown(report)
    assert "| m | – | 10 | A✗⊙V✗ (both, synchronous) | 100.0 [72-100] | 70.0 [40-89]" in page


def test_a_tiny_run_end_to_end_and_resumed(monkeypatch):
    monkeypatch.setattr(evaluation, "SHARES", (0.0, 0.1, 0.2))
    dataset = [tiny_clip(20, label=i % 3, seed=i) for i in range(2)]
    loads, saved = [], []

    def load(name, device):
        loads.append(name)
        return tiny_model(attention=name == "tiny-attention")

    report = evaluation.run(["tiny-concat", "tiny-attention"], dataset, [0, 1], {}, saved.append, draws=2,
                            data="tiny", log=lambda *_: None, load=load, digest=lambda name: name * 8)
    assert loads == ["tiny-concat", "tiny-attention"] and saved
    assert report["stamp"]["methods"] == {"tiny-concat": "segments", "tiny-attention": "segments"}
    assert len(report["results"]) == 2 * len(MODES) * 3 and all(r["clips"] == 2 for r in report["results"])
    assert [item["claim"] for item in evaluation.findings(report)] == [claim for claim, _ in evaluation.FINDINGS]
    again = evaluation.run(["tiny-concat", "tiny-attention"], dataset, [0, 1], report, saved.append, draws=2,
                           data="tiny", log=lambda *_: None, load=load, digest=lambda name: name * 8)
    assert len(loads) == 2 and again["results"] == report["results"]  # resumed: nothing measured again
    figure = evaluation.figure(report)
    assert len(figure.data) == 2 * (len(MODES) + 1)


def test_the_default_models_and_the_clip_folder():
    from avdemo.data.synth import SynthConfig, split_dir
    from avdemo.zoo import list_models

    assert split_dir("test", 0, SynthConfig(frames=4), root="/c").parent.name == "T4-S224-seed0"  # unchanged
    assert split_dir("test", 0, evaluation.clip_config(), root="/c").parent.name == "T20-S224-L81920-seed0"
    if not list_models():
        pytest.skip("needs the shipped model zoo in checkpoints/")
    chosen = evaluation.default_models()
    assert {"av-concat", "av-sum", "av-attention"} <= set(chosen)
    assert not {"audio-only", "visual-only", "av-concat-exfmem", "av-minsim"} & set(chosen)
