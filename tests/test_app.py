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
    OUTPUTS,
    build_app,
    choose_example,
    cost_hint,
    example_choices,
    example_paths,
    arrival,
    launch,
    load_input,
    mask_clip,
    model_frames,
    paper_preset_values,
    pick_target,
    playable_video,
    run_attack,
    show_target,
    snr_hint,
    target_view,
    transfer_layout,
)
from avdemo.media import decode_clip
from avdemo.zoo import list_models

from media_factory import write_video

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
EXAMPLE = str(example_paths()[3])  # cello beside a silent violin
pytestmark = pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")


def _run(video, **changes):
    """run_attack with test settings; its outputs by name (`OUTPUTS`)."""
    settings = dict(image=None, sound=None, model="av-attention", defense="none", attack="pgd", modality="both",
                    eps_audio=0.01, eps_visual_255=4, steps=5, target="none", seed=0, paper=False, compare=False,
                    model_b=None, defense_b=None, modality_b=None, region=None, craft_on="same")
    settings.update(changes)
    return dict(zip(OUTPUTS, run_attack(video, *settings.values(), progress=lambda *args, **kwargs: None)))


def test_run_on_an_example_renders_every_view():
    out = _run(EXAMPLE)
    summary = out["summary_a"]
    assert "true: **cello**" in summary and "Pointing game" in summary
    assert "The map is the learned cell-level audio-visual correspondence" in summary
    assert "L∞ 4.00/255" in summary and "L∞ 0.0100" in summary  # the budgets the sliders asked for
    assert out["verdict_a"].startswith("**A: av-attention, no defense, attack on both**") and "Localization" in out["verdict_a"]
    top_k = out["top_k_a"]
    assert len(top_k.data) == 2 and set(top_k.data[0].y) == set(top_k.data[1].y) and "cello ✔ (true)" in top_k.data[0].y
    segments = model_frames("av-attention")
    assert out["strip_a"].shape == (3 * 224, segments * 224, 3) and out["strip_a"].dtype == np.uint8  # clean, attacked, delta
    assert out["verdict_b"] == "" and out["strip_b"] is None and out["top_k_b"] is None  # no second configuration
    assert out["perturbation"].shape == (224, 224, 3) and "amplified" in out["perturbation_note"]
    for rate, samples in (out["clean_audio"], out["adversarial_audio"], out["perturbation_audio"]):
        assert rate == SAMPLE_RATE and samples.dtype == np.int16 and samples.shape == (NUM_SAMPLES,)
    assert 0 < np.abs(out["adversarial_audio"][1].astype(int) - out["clean_audio"][1]).max() <= round(0.01 * 32767) + 1
    assert "dB" in out["gain_note"]
    assert [len(trace.y) for trace in out["trace_plot"].data] == [6, 6, 6]  # 5 steps + the clean input
    assert len(out["sound_plot"].data) == 5  # three waveforms, two spectrograms
    assert len(out["tsne_plot"].data) >= 4
    assert out["adversarial_video"] is None  # written on request only
    take_away = out["take_away"]
    assert [Path(path).name for path in take_away] == ["adversarial.npz", "run.json"]  # the lossless input
    video = playable_video(take_away)
    assert Path(video).suffix == ".mp4" and decode_clip(video).frames.shape[0] >= 1
    with pytest.raises(gr.Error, match="Run an attack first"):
        playable_video(None)


def test_a_click_sets_the_map_target_and_the_summary_says_what_moved():
    _, truth = load_input(EXAMPLE, frames=model_frames("av-attention"))
    picker, region = target_view(EXAMPLE, None, None, "av-attention", "none", "")
    assert region == "silent violin" and picker.shape == (224, 224, 3)  # the clip's silent object, preselected
    x0, y0, x1, y1 = truth.distractor_box[0, 0]
    click = lambda x, y: gr.SelectData(None, {"index": [x, y], "value": None})  # noqa: E731
    assert pick_target(EXAMPLE, None, None, "av-attention", "none", click(2, 2))[1] == "0.00, 0.00, 0.30, 0.30"
    assert pick_target(EXAMPLE, None, None, "av-attention", "none", click((x0 + x1) / 2, (y0 + y1) / 2))[1] == "silent violin"
    assert show_target("pgd", EXAMPLE, None, None, "av-attention", "none", "")[0]["visible"] is False
    assert show_target("map-target", EXAMPLE, None, None, "av-attention", "none", "")[2] == "silent violin"
    out = _run(EXAMPLE, attack="map-target", modality="visual", eps_visual_255=4, steps=3, region="silent violin")
    assert "the map moved onto the silent violin in" in out["summary_a"]
    record = (Path(out["take_away"][0]).parent / "run.json").read_text()
    assert '"region": "silent violin"' in record and '"target_region": [' in record  # replayable: the boxes it aimed at
    with pytest.raises(gr.Error, match="needs a target region"):
        _run(EXAMPLE, attack="map-target", steps=1, region="")
    with pytest.raises(gr.Error, match="takes no target class"):
        _run(EXAMPLE, attack="map-away", steps=1, target="violin")


def test_compare_runs_two_configurations_on_the_same_clip():
    out = _run(EXAMPLE, compare=True, model_b="av-concat", defense_b="minsim", modality_b="audio", steps=2)
    assert out["verdict_a"].startswith("**A: av-attention, no defense, attack on both**")
    assert out["verdict_b"].startswith("**B: av-concat, defense minsim, attack on audio**")
    assert "**av-minsim**" in out["summary_b"] and "L∞ 0.00/255" in out["summary_b"]  # B attacked the sound only
    assert out["strip_a"].shape == out["strip_b"].shape and out["top_k_b"] is not None


def test_craft_on_another_model_shows_the_attackers_model_beside_the_untouched_one():
    out = _run(EXAMPLE, model="av-concat", defense="minsim", craft_on="av-sum", steps=1, compare=True, model_b="av-film")
    assert out["verdict_a"].startswith("**A: av-concat, defense minsim, attack on both; crafted on av-sum, this model "
                                       "never touched by the attacker**")
    assert out["verdict_b"].startswith("**B: av-sum, the model the attack was crafted on")  # not compare's av-film
    assert "- **Crafted on av-sum (white-box: " in out["summary_a"] and \
        "on av-minsim, never touched by the attacker: " in out["summary_a"]
    assert out["summary_b"].startswith("**av-sum**") and "objectives" not in out["summary_a"]  # one: the transfer
    record = (Path(out["take_away"][0]).parent / "run.json").read_text()
    assert '"craft_on": "av-sum"' in record and '"entry": "av-minsim"' in record
    with pytest.raises(gr.Error, match="no such model"):
        _run(EXAMPLE, craft_on="av-nothing", steps=1)
    # on the page: column B shows the crafting model, compare's controls fold and its box is locked off
    controls, column_b, box = transfer_layout(True, "av-concat", "minsim", "av-sum")
    assert (controls["visible"], column_b["visible"], box["value"], box["interactive"]) == (False, True, False, False)
    controls, column_b, box = transfer_layout(True, "av-concat", "none", "same")
    assert (controls["visible"], column_b["visible"], box["interactive"]) == (True, True, True) and "value" not in box
    assert transfer_layout(False, "av-sum", "none", "av-sum")[1]["visible"] is False  # crafting on itself: white-box


def test_masking_runs_the_model_on_the_masked_clip_through_the_same_views():
    out = dict(zip(OUTPUTS, mask_clip(EXAMPLE, None, None, "av-attention", "none", 25, "visual", 3)))
    assert out["verdict_a"].startswith("**A: av-attention, no defense, 25 % of the time masked in the video only, no "
                                       "attack**") and "segments masked" in out["verdict_a"]
    assert "once masked" in out["summary_a"] and "No attack: 25% of the clip's time masked in the video only" in \
        out["summary_a"]
    assert out["strip_a"].shape == (3 * 224, model_frames("av-attention") * 224, 3) and out["verdict_b"] == ""
    assert out["trace_plot"] is None and "not masked" in out["gain_note"]  # no attack, no trace; the sound untouched
    assert np.array_equal(out["adversarial_audio"][1], out["clean_audio"][1]) and out["perturbation"] is not None
    record = (Path(out["take_away"][0]).parent / "run.json").read_text()
    assert '"masking": {' in record and '"mode": "visual"' in record and '"settings": null' in record
    with pytest.raises(gr.Error, match="unknown masking mode"):
        mask_clip(EXAMPLE, None, None, "av-attention", "none", 25, "sideways", 0)


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
    out = _run(EXAMPLE, modality="audio", eps_audio=0.05)
    assert out["perturbation"] is None and "not attacked" in out["perturbation_note"]
    strip = out["strip_a"]
    clean_row, attacked_row = strip[2: 224 - 2], strip[224 + 2: 2 * 224 - 2]
    assert not np.array_equal(clean_row, attacked_row)  # the maps moved (the frames are the same)


def test_defenses_run_every_objective_and_say_which_won():
    summary = _run(EXAMPLE, model="av-sum", defense="minsim", steps=2)["summary_a"]
    assert "built on av-concat" in summary and "**av-minsim**" in summary
    tried = summary.split("Tried: ")[1].split("\n")[0]
    assert [part.split(" →")[0] for part in tried.split("; ")] == ["ce", "ce+term", "transfer:av-concat"]
    winner = summary.split("was **")[1].split("**")[0]
    assert winner in ("ce", "ce+term", "transfer:av-concat")
    summary = _run(EXAMPLE, model="av-concat", defense="exfmem", steps=2)["summary_a"]
    assert "**av-concat-exfmem**" in summary and "bpda →" in summary
    undefended = _run(EXAMPLE, model="av-concat", steps=2)["summary_a"]
    assert "objectives" not in undefended and "**av-concat**" in undefended


def test_unimodal_models_targets_and_the_paper_preset():
    out = _run(EXAMPLE, model="audio-only", steps=2)
    assert out["strip_a"] is None and "does not localize" in out["verdict_a"] and out["tsne_plot"] is not None
    target_summary = _run(EXAMPLE, model="av-concat", target="dog", eps_audio=0.05, eps_visual_255=16, steps=20)["summary_a"]
    assert "under attack **dog**" in target_summary
    eps_audio, eps_visual, steps, paper, note = paper_preset_values("both")
    assert (eps_audio, steps, paper) == (0.006, 10, True) and eps_visual == pytest.approx(0.35, abs=0.01)
    assert "std_c" in note
    preset = _run(EXAMPLE, paper=True, attack="mim", eps_audio=0.05, eps_visual_255=16)["summary_a"]
    # the preset's budgets, not the sliders': 0.006 on the waveform, 0.006 * std_c < 0.35/255 on the pixels
    assert "L∞ 0.0060" in preset and "L∞ 0.35/255" in preset


def test_slow_runs_are_announced_and_capped(monkeypatch):
    from avdemo.lab import analysis, ui

    monkeypatch.setattr(analysis, "STEP_SECONDS", {})  # the first guess, not this process's (possibly busy) timings
    assert "A slow run" not in cost_hint("av-attention", "none", 10)
    assert "A slow run" in cost_hint("av-concat", "minsim-exfmem-fista", 50)
    steps_a, steps_b = (int(cost_hint(*args).split(": ")[1].split(" ")[0]) for args in
                        (("av-concat", "minsim", 10), ("av-concat", "minsim", 10, True, "av-attention", "none")))
    assert steps_b == steps_a + 10  # compare adds B's steps
    monkeypatch.setattr(ui, "RUN_SECONDS", 0.0)
    with pytest.raises(gr.Error, match="time cap of 0 s at step 1 of 5"):
        _run(EXAMPLE)


def test_uploads_image_with_sound_and_bad_files(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", audio_codec=None)
    assert "no audio track" in _run(str(silent), steps=1)["summary_a"]
    import cv2

    picture = tmp_path / "picture.png"
    cv2.imwrite(str(picture), np.full((120, 160, 3), 80, np.uint8))
    out = _run(None, image=str(picture), model="av-concat", attack="fgsm", modality="visual", eps_audio=0.0,
               eps_visual_255=8, steps=1)
    assert "L∞ 8.00/255" in out["summary_a"] and "L∞ 0.0000" in out["summary_a"]  # FGSM moved every pixel by 8/255
    assert out["perturbation"] is not None and not out["clean_audio"][1].any()  # an image alone is silent
    assert "No ground truth" in out["verdict_a"] and "px" in out["verdict_a"]  # the peak's move, in pixels
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


def test_example_menu_and_its_lesson():
    choices = example_choices()
    assert len(choices) == len(example_paths()) >= 10 and choices[3] == ("cello-beside-violin", EXAMPLE)
    path, lesson = choose_example(EXAMPLE)
    assert path == EXAMPLE and lesson.startswith("**Lesson, cello-beside-violin**") and "class and map" in lesson
    assert choose_example(None) == (None, "")


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


def test_arrival_equals_a_fresh_run_with_the_controls_defaults():
    """The page opens on a finished example: what it shows must be what Run gives with the
    controls as they stand on arrival (read from the built page, not from ARRIVAL)."""
    demo = build_app()
    shown = {block.elem_id: block.value for block in demo.blocks.values() if getattr(block, "elem_id", None)
             and hasattr(block, "value")}
    names = ("model", "defense", "attack", "modality", "eps-audio", "eps-visual", "steps", "target", "seed", "paper",
             "compare", "model-b", "defense-b", "modality-b")
    fresh = dict(zip(OUTPUTS, run_attack(shown["example"], None, None, *(shown[name] for name in names),
                                         craft_on=shown["craft-on"], progress=lambda *args, **kwargs: None)))
    video, lesson, *values = arrival()
    arrived = dict(zip(OUTPUTS, values))
    assert video == shown["example"] and lesson.startswith("**Lesson, duck-beside-rooster**")
    assert arrived["summary_a"] == fresh["summary_a"] and arrived["verdict_a"] == fresh["verdict_a"]  # predictions exactly
    for bars, again in zip(arrived["top_k_a"].data, fresh["top_k_a"].data):
        assert list(bars.y) == list(again.y) and np.array_equal(bars.x, again.x)
    difference = np.abs(arrived["strip_a"].astype(int) - fresh["strip_a"])
    assert difference.max() <= 1  # the maps, drawn: equal up to rounding of the blend
    assert all(arrived[name] is not None for name in OUTPUTS if not name.endswith("_b") and name != "adversarial_video")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    demo = build_app()
    launch(demo, warm=True, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo
    demo.close()


@pytest.mark.integration
def test_served_app_through_gradio_client(served, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served.local_url, verbose=False)
    arguments = [None, None, "av-concat", "none", "pgd", "both", 0.01, 4, 3, "none", 0, False, False, "av-concat", "none", "both"]
    result = dict(zip(OUTPUTS, client.predict(handle_file(EXAMPLE), *arguments, api_name="/run")))
    assert "true: **cello**" in result["summary_a"]
    arrays = np.load(next(path for path in result["take_away"] if path.endswith(".npz")))  # the lossless take-away, fetched
    assert arrays["adversarial_frames"].dtype == np.float32 and arrays["adversarial_frames"].shape[1:] == (224, 224, 3)
    upload = write_video(tmp_path / "upload.webm", video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48000)
    summary = dict(zip(OUTPUTS, client.predict(handle_file(str(upload)), *arguments, api_name="/run")))["summary_a"]
    assert "under attack" in summary and "L∞ 4.00/255" in summary and "true:" not in summary  # attacked, no ground truth
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(Exception, match="could not be read"):
        client.predict(handle_file(str(bad)), *arguments, api_name="/run")


def _quiet(page, seconds: float = 1.0) -> None:
    """Wait until no output is pending (Gradio marks pending outputs) and the page settles."""
    page.wait_for_function("!document.querySelector('.pending, .generating')", timeout=120_000)
    page.wait_for_timeout(int(seconds * 1000))


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
        page = browser.new_page(viewport={"width": 1366, "height": 768})  # a classroom laptop
        page.goto(served.local_url, timeout=60_000)
        # arrival: a finished example before any click, and the first controls above the fold
        page.wait_for_selector("#strip-a img", timeout=120_000)
        page.wait_for_selector("#top-k-a .js-plotly-plot", timeout=60_000)
        assert "rooster" in page.locator("#verdict-a").inner_text() and "Lesson" in page.locator("#lesson").inner_text()
        for control in ("#example", "#model", "#defense", "#attack", "#eps-audio", "#eps-visual", "#run"):
            box = page.locator(control).bounding_box()
            assert box is not None and box["y"] + box["height"] <= 768, f"{control} is below the fold"
        page.screenshot(path=str(ARTIFACTS / "arrival.png"))
        _quiet(page)
        # a lesson: its settings in one click (compare mode, audio-only A, frames-only B), then Run
        page.locator("#lesson-apply").click()
        page.wait_for_selector("#strip-b", state="visible", timeout=30_000)
        assert page.locator("#compare input").is_checked()
        page.locator("#run").click()
        page.wait_for_selector("#strip-b img", timeout=120_000)
        _quiet(page)
        assert "attack on audio" in page.locator("#verdict-a").inner_text()
        assert "silent rooster" in page.locator("#verdict-a").inner_text()  # the lesson's claim, on the page
        assert "attack on visual" in page.locator("#verdict-b").inner_text()
        assert page.locator("#tsne .js-plotly-plot .scatterlayer .trace").count() >= 4
        page.locator("#listen .label-wrap").click()  # the players fold away until asked for
        for player in ("#clean-audio", "#adversarial-audio", "#perturbation-audio"):
            page.wait_for_selector(f"{player} audio, {player} .waveform-container, {player} button", timeout=30_000)
        with page.expect_download(timeout=30_000) as download:
            page.locator("#take-away tr", has_text="adversarial").locator("a").first.click()  # the size link downloads
        saved = ARTIFACTS / "adversarial.npz"
        download.value.save_as(saved)
        with np.load(saved) as arrays:  # the exact input: float frames, not the mp4's 8-bit H.264
            assert arrays["adversarial_frames"].dtype == np.float32 and arrays["adversarial_waveform"].ndim == 1
        # black-box transfer: crafted on av-sum, shown on the model above; B shows av-sum and compare is locked off
        page.locator("#transfer .label-wrap").click()
        craft_on = page.locator("#craft-on input")
        craft_on.click()
        page.get_by_role("option", name="av-sum", exact=True).click()
        page.wait_for_function("() => document.querySelector('#compare input').disabled", timeout=30_000)
        page.locator("#run").click()
        page.wait_for_function("() => document.querySelector('#summary').innerText.includes('never touched by the "
                               "attacker')", timeout=120_000)
        _quiet(page)
        assert page.locator("#verdict-b").inner_text().startswith("B: av-sum, the model the attack was crafted on")
        page.screenshot(path=str(ARTIFACTS / "transfer.png"))
        craft_on.click()
        page.get_by_role("option", name="the same model (white-box)").click()
        page.wait_for_function("() => !document.querySelector('#compare input').disabled", timeout=30_000)
        # aim the map: the attack that takes a region shows the frame to click; a click picks a square or an object
        page.locator("#attack input").click()
        page.get_by_role("option", name="map-target").click()
        region = page.locator("#target-region textarea, #target-region input").first

        def click_picker(x: float, y: float) -> None:
            """Click the frame to aim at, at (x, y) of its 224 px, once its (redrawn) image has loaded."""
            page.wait_for_function("() => { const i = document.querySelector('#target-picker img'); "
                                   "return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
            picture = page.locator("#target-picker img")
            shown = picture.bounding_box()  # scrolled into view by the click
            picture.click(position={"x": x * shown["width"] / 224, "y": y * shown["height"] / 224})

        click_picker(3, 3)  # a corner: no object there
        page.wait_for_function("e => e.value.startsWith('0.00')", arg=region.element_handle(), timeout=30_000)
        _, truth = load_input(str(example_paths()[0].parent / "duck-beside-rooster.mp4"), frames=model_frames("av-attention"))
        x0, y0, x1, y1 = (float(v) for v in truth.distractor_box[0, 0])
        click_picker((x0 + x1) / 2, (y0 + y1) / 2)
        page.wait_for_function("e => e.value === 'silent rooster'", arg=region.element_handle(), timeout=30_000)
        page.locator("#run").click()
        page.wait_for_function("() => document.querySelector('#summary').innerText.includes('onto the silent rooster')",
                               timeout=120_000)
        _quiet(page)
        page.locator("#make-video").click()  # the playable mp4, on request
        page.wait_for_selector("#adversarial-video video", timeout=60_000)
        _quiet(page)
        page.locator("#masking .label-wrap").click()  # masking, no attack: the same views
        page.locator("#mask-run").click()
        page.wait_for_function("() => document.querySelector('#summary').innerText.includes('No attack')", timeout=60_000)
        _quiet(page)
        page.set_viewport_size({"width": 1366, "height": 2600})
        page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
        # the evaluation figures: drawn when the Robustness tab opens, each naming the report it comes from
        page.get_by_role("tab", name="Robustness").click()
        for figure in ("#eps-figure", "#transfer-figure", "#defense-figure", "#localization-figure"):
            page.wait_for_selector(f"{figure} .js-plotly-plot .main-svg", timeout=60_000)
        assert "reports/robustness.json" in page.locator("#figures-note").inner_text()
        assert "clips" in page.locator("#eps-figure .gtitle").first.text_content()  # SVG text
        page.locator("#evaluation-figures").screenshot(path=str(ARTIFACTS / "figures.png"))
        browser.close()
    assert (ARTIFACTS / "app.png").stat().st_size > 50_000
