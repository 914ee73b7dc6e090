"""The app: handlers called directly, the served app through gradio_client, and the page in a
real headless Chromium (Debian's, driven by Playwright), with a screenshot kept as an artifact."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from avdemo import NUM_SAMPLES, SAMPLE_RATE
from avdemo.lab.ui import (
    build_app,
    choose_example,
    example_paths,
    launch,
    load_input,
    model_frames,
    paper_preset_values,
    run_attack,
    snr_hint,
    thumbnails,
)
from avdemo.zoo import list_models

from media_factory import write_video

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
EXAMPLE = str(example_paths()[3])  # cello beside a silent violin
pytestmark = pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")


def _run(video, **changes):
    settings = dict(image=None, sound=None, model="av-attention", defense="none", attack="pgd", modality="both",
                    eps_audio=0.01, eps_visual_255=4, steps=5, target="none", seed=0, paper=False)
    settings.update(changes)
    return run_attack(video, *settings.values())


def test_run_on_an_example_renders_every_view():
    (summary, top_k, clean_maps, attacked_maps, perturbation, perturbation_note, clean_audio, adversarial_audio,
     perturbation_audio, gain_note, sound_plot, trace_plot, tsne_plot, video, inputs_seen, take_away) = _run(EXAMPLE)
    assert "true: **cello**" in summary and "Pointing game" in summary
    assert "The map is the learned cell-level audio-visual correspondence" in summary
    assert "L∞ 4.00/255" in summary and "L∞ 0.0100" in summary  # the budgets the sliders asked for
    assert len(top_k.data) == 2 and set(top_k.data[0].y) == set(top_k.data[1].y) and "cello ✔ (true)" in top_k.data[0].y
    assert len(clean_maps) == len(attacked_maps) == model_frames("av-attention")  # one map per segment
    image, caption = clean_maps[0]
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8 and "peak" in caption
    assert perturbation.shape == (224, 224, 3) and "amplified" in perturbation_note
    for rate, samples in (clean_audio, adversarial_audio, perturbation_audio):
        assert rate == SAMPLE_RATE and samples.dtype == np.int16 and samples.shape == (NUM_SAMPLES,)
    assert 0 < np.abs(adversarial_audio[1].astype(int) - clean_audio[1]).max() <= round(0.01 * 32767) + 1
    assert "dB" in gain_note
    assert [len(trace.y) for trace in trace_plot.data] == [6, 6, 6]  # 5 steps + the clean input
    assert len(sound_plot.data) == 5  # three waveforms, two spectrograms
    assert len(tsne_plot.data) >= 4 and Path(video).suffix == ".mp4" and len(inputs_seen) == model_frames("av-attention")
    assert [Path(path).name for path in take_away] == ["adversarial.npz", "run.json"]  # the lossless input beside the mp4
    assert all(Path(path).parent == Path(video).parent for path in take_away)


def test_tsne_names_every_class_and_draws_each_move_as_an_arrow():
    from avdemo.lab.analysis import run
    from avdemo.lab.ui import attack_settings
    from avdemo.lab.views import tsne_figure

    clip, truth = load_input(EXAMPLE, frames=model_frames("av-attention"))
    analysis = run(clip, "av-attention", "none", "pgd", attack_settings("both", 0.01, 4, 2, 0, False), truth=truth)
    figure = tsne_figure(analysis)
    legend = {trace.name for trace in figure.data if trace.showlegend is not False}
    shown = {analysis.classes[int(k)] for placed in analysis.embeddings.values() for k in np.unique(placed["labels"])}
    assert shown and shown <= legend  # every class on the map has a named legend entry
    assert all("text" not in (trace.mode or "") for trace in figure.data)  # names on hover, none printed to collide
    moves = [(placed["clean"][i], placed["attacked"][i]) for placed in analysis.embeddings.values()
             for i in range(len(placed["kinds"]))]
    assert len(figure.layout.annotations) - len(analysis.embeddings) == len(moves)  # subplot titles + one arrow each
    arrows = [a for a in figure.layout.annotations if a.showarrow]
    for arrow, (clean, attacked) in zip(arrows, moves):
        assert (arrow.ax, arrow.ay) == tuple(clean) and (arrow.x, arrow.y) == tuple(attacked)


def test_the_views_receive_numpy_only():
    import dataclasses

    import torch

    from avdemo.lab.analysis import run
    from avdemo.lab.ui import attack_settings

    clip, truth = load_input(EXAMPLE)
    analysis = run(clip, "av-attention", "minsim", "pgd", attack_settings("both", 0.01, 4, 2, 0, False), truth=truth)

    def torch_inside(value, path):
        if isinstance(value, torch.Tensor):
            return [path]
        if dataclasses.is_dataclass(value):
            return [p for f in dataclasses.fields(value) for p in torch_inside(getattr(value, f.name), f"{path}.{f.name}")]
        if isinstance(value, dict):
            return [p for k, v in value.items() for p in torch_inside(v, f"{path}[{k!r}]")]
        if isinstance(value, (list, tuple)):
            return [p for i, v in enumerate(value) for p in torch_inside(v, f"{path}[{i}]")]
        return []

    assert torch_inside(analysis, "analysis") == []
    assert analysis.adversarial_frames.shape == (len(clip.frames), 224, 224, 3)  # batch removed, channels last
    assert analysis.clean_probabilities.shape == (len(analysis.classes),)
    assert analysis.clean_probabilities.sum() == pytest.approx(1, abs=1e-5)


def test_audio_only_attack_moves_the_map_but_not_the_pixels():
    outputs = _run(EXAMPLE, modality="audio", eps_audio=0.05)
    perturbation, perturbation_note = outputs[4], outputs[5]
    assert perturbation is None and "not attacked" in perturbation_note
    clean_maps, attacked_maps = outputs[2], outputs[3]
    assert not np.array_equal(clean_maps[0][0], attacked_maps[0][0])


def test_defenses_run_every_objective_and_say_which_won():
    summary = _run(EXAMPLE, model="av-sum", defense="minsim", steps=2)[0]
    assert "built on av-concat" in summary and "**av-minsim**" in summary
    tried = summary.split("Tried: ")[1].split("\n")[0]
    assert [part.split(" →")[0] for part in tried.split("; ")] == ["ce", "ce+term", "transfer:av-concat"]
    winner = summary.split("was **")[1].split("**")[0]
    assert winner in ("ce", "ce+term", "transfer:av-concat")
    summary = _run(EXAMPLE, model="av-concat", defense="exfmem", steps=2)[0]
    assert "**av-concat-exfmem**" in summary and "bpda →" in summary
    undefended = _run(EXAMPLE, model="av-concat", steps=2)[0]
    assert "objectives" not in undefended and "**av-concat**" in undefended


def test_unimodal_models_targets_and_the_paper_preset():
    outputs = _run(EXAMPLE, model="audio-only", steps=2)
    assert outputs[2] == [] and outputs[12] is not None
    target_summary = _run(EXAMPLE, model="av-concat", target="dog", eps_audio=0.05, eps_visual_255=16, steps=20)[0]
    assert "under attack **dog**" in target_summary
    eps_audio, eps_visual, steps, paper, note = paper_preset_values("both")
    assert (eps_audio, steps, paper) == (0.006, 10, True) and eps_visual == pytest.approx(0.35, abs=0.01)
    assert "std_c" in note
    preset = _run(EXAMPLE, paper=True, attack="mim", eps_audio=0.05, eps_visual_255=16)[0]
    # the preset's budgets, not the sliders': 0.006 on the waveform, 0.006 * std_c < 0.35/255 on the pixels
    assert "L∞ 0.0060" in preset and "L∞ 0.35/255" in preset


def test_uploads_image_with_sound_and_bad_files(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", audio_codec=None)
    assert "no audio track" in _run(str(silent), steps=1)[0]
    import cv2

    picture = tmp_path / "picture.png"
    cv2.imwrite(str(picture), np.full((120, 160, 3), 80, np.uint8))
    outputs = run_attack(None, str(picture), None, "av-concat", "none", "fgsm", "visual", 0.0, 8, 1, "none", 0, False)
    assert "L∞ 8.00/255" in outputs[0] and "L∞ 0.0000" in outputs[0]  # FGSM moved every pixel by 8/255, no sound
    assert outputs[4] is not None and not outputs[6][1].any()  # a perturbation image; an image alone is silent
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 5000)
    with pytest.raises(gr.Error, match="could not be read"):
        _run(str(broken))
    with pytest.raises(gr.Error, match="still image"):
        _run(str(picture))
    with pytest.raises(gr.Error, match="Choose an example"):
        _run(None)
    with pytest.raises(gr.Error, match="between 0 and 1"):
        _run(EXAMPLE, eps_audio=3.0)
    assert "SNR ≥" in snr_hint(EXAMPLE, None, None, 0.01) and "untouched" in snr_hint(EXAMPLE, None, None, 0.0)


def test_example_gallery_thumbnails_and_choice():
    shown = thumbnails(example_paths())
    assert len(shown) == len(example_paths()) >= 10 and shown[3][1] == "cello-beside-violin"
    assert shown[0][0].shape == (224, 224, 3)
    path, lesson = choose_example(gr.SelectData(None, {"index": 3, "value": None}))
    assert path == EXAMPLE and "cello sounds" in lesson


def test_ground_truth_only_for_the_real_example(tmp_path):
    copy = tmp_path / Path(EXAMPLE).name
    shutil.copy(EXAMPLE, copy)
    clip, truth = load_input(str(copy))
    assert truth is not None and truth.label == "cello" and truth.box.shape == (len(clip.frames), 4)
    other = write_video(tmp_path / "upload.mp4")
    renamed = tmp_path / "renamed" / Path(EXAMPLE).name  # same name as the example, another video
    renamed.parent.mkdir()
    shutil.copy(other, renamed)
    clip, truth = load_input(str(renamed))  # decodes: the test below is about the truth, not the file
    assert clip.frames.shape[0] >= 1 and truth is None


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    demo = build_app()
    launch(demo, warm=False, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo
    demo.close()


@pytest.mark.integration
def test_served_app_through_gradio_client(served, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served.local_url, verbose=False)
    arguments = [None, None, "av-concat", "none", "pgd", "both", 0.01, 4, 3, "none", 0, False]
    result = client.predict(handle_file(EXAMPLE), *arguments, api_name="/run")
    assert len(result) == 16 and "true: **cello**" in result[0]
    arrays = np.load(next(path for path in result[15] if path.endswith(".npz")))  # the lossless take-away, fetched
    assert arrays["adversarial_frames"].dtype == np.float32 and arrays["adversarial_frames"].shape[1:] == (224, 224, 3)
    upload = write_video(tmp_path / "upload.webm", video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48000)
    summary = client.predict(handle_file(str(upload)), *arguments, api_name="/run")[0]
    assert "under attack" in summary and "L∞ 4.00/255" in summary and "true:" not in summary  # attacked, no ground truth
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(Exception, match="could not be read"):
        client.predict(handle_file(str(bad)), *arguments, api_name="/run")


@pytest.mark.integration
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_page_in_a_real_browser(served):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 2600})
        page.goto(served.local_url, timeout=60_000)
        page.locator("#examples img").nth(3).click()  # cello-beside-violin
        page.wait_for_selector("text=The cello sounds", timeout=30_000)
        page.wait_for_selector("video", timeout=30_000)
        page.get_by_role("button", name="Run").click()
        page.wait_for_selector("#attacked-maps img", timeout=120_000)
        page.wait_for_selector("#tsne .js-plotly-plot", timeout=60_000)
        assert page.locator("#clean-maps img").count() >= 1
        assert page.locator("#tsne .js-plotly-plot .scatterlayer .trace").count() >= 4
        for player in ("#clean-audio", "#adversarial-audio", "#perturbation-audio"):
            page.wait_for_selector(f"{player} audio, {player} .waveform-container, {player} button", timeout=30_000)
        with page.expect_download(timeout=30_000) as download:
            page.locator("#take-away tr", has_text="adversarial").locator("a").first.click()  # the size link downloads
        saved = ARTIFACTS / "adversarial.npz"
        download.value.save_as(saved)
        with np.load(saved) as arrays:  # the exact input: float frames, not the mp4's 8-bit H.264
            assert arrays["adversarial_frames"].dtype == np.float32 and arrays["adversarial_waveform"].ndim == 1
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "app.png").stat().st_size > 50_000
