"""The app: handlers called directly, then the real server driven through gradio_client."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from avdemo import NUM_SAMPLES, SAMPLE_RATE
from avdemo.ui import analyse, build_app, launch, snr_db

from media_factory import write_video


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return str(write_video(tmp_path_factory.mktemp("app") / "clip.mp4", duration=2.0))


def test_analyse_returns_every_view(video):
    frames, plot, clean_audio, adversarial_audio, clean_top, attacked_top, summary = analyse(
        video, "av-concat", "pgd", "both", 0.01, 4, 3
    )
    assert len(frames) == 1 and frames[0].shape == (224, 224, 3)
    assert plot.layout.height == 260
    rate, samples = clean_audio
    assert rate == SAMPLE_RATE and samples.dtype == np.int16 and samples.shape == (NUM_SAMPLES,)
    adversarial = adversarial_audio[1].astype(np.int32)
    assert 0 < np.abs(adversarial - samples).max() <= round(0.01 * 32767) + 1
    assert len(clean_top) == 5 and sum(clean_top.values()) <= 1 + 1e-6
    assert len(attacked_top) == 5
    assert "Untrained weights" in summary and "SNR" in summary


def test_visual_attack_leaves_the_sound_untouched(video):
    _, _, clean_audio, adversarial_audio, *_ = analyse(video, "av-attention", "fgsm", "visual", 0.05, 8, 1)
    assert np.array_equal(clean_audio[1], adversarial_audio[1])


def test_silent_video_is_flagged(tmp_path):
    path = write_video(tmp_path / "silent.mp4", audio_codec=None)
    *_, summary = analyse(str(path), "visual-only", "mim", "visual", 0.0, 2, 2)
    assert "no audio track" in summary


@pytest.mark.parametrize(
    "content,message", [(b"", "empty"), (b"not a video" * 50, "could not be read")]
)
def test_bad_files_become_user_errors(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(gr.Error, match=message):
        analyse(str(path), "av-concat", "pgd", "both", 0.01, 2, 2)


def test_missing_upload_and_bad_budget_become_user_errors(video):
    with pytest.raises(gr.Error, match="Upload"):
        analyse(None, "av-concat", "pgd", "both", 0.01, 2, 2)
    with pytest.raises(gr.Error, match="between 0 and 1"):
        analyse(video, "av-concat", "pgd", "audio", 5.0, 2, 2)


def test_snr_of_silence_and_of_a_known_ratio():
    signal = np.ones(100)
    assert snr_db(signal, np.zeros(100)) == float("inf")
    assert snr_db(signal, 0.1 * signal) == pytest.approx(20.0)


@pytest.mark.integration
def test_served_app_answers_gradio_client(video, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    demo = build_app()
    launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        result = client.predict(handle_file(video), "av-concat", "pgd", "both", 0.01, 4, 2, api_name="/analyse")
        assert len(result) == 7 and "SNR" in result[-1]
        bad = tmp_path / "broken.mp4"
        bad.write_bytes(b"broken" * 100)
        with pytest.raises(Exception, match="could not be read"):
            client.predict(handle_file(str(bad)), "av-concat", "pgd", "both", 0.01, 4, 2, api_name="/analyse")
    finally:
        demo.close()
