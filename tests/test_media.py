"""Media I/O on files the tests write: containers, layouts, rates, rotation, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from avdemo import NUM_SAMPLES, SAMPLE_RATE
from avdemo.media import MediaError, clip_from_image, decode_audio, decode_clip, fit_square, write_mp4

from media_factory import grey_for_time, set_mp4_rotation, tone, write_audio, write_video

WINDOW = NUM_SAMPLES / SAMPLE_RATE

CONTAINERS = {
    "mp4": dict(video_codec="libx264", audio_codec="aac"),
    "webm": dict(video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48000),
    "mov": dict(video_codec="h264", audio_codec="pcm_s16le", sample_rate=44100),
    "mkv": dict(video_codec="mpeg4", audio_codec="libmp3lame", sample_rate=44100),
    "avi": dict(video_codec="mpeg4", audio_codec="pcm_s16le", sample_rate=8000),
}


def _sound_span(waveform: np.ndarray, threshold: float = 0.05) -> tuple[int, int]:
    loud = np.nonzero(np.abs(waveform) > threshold)[0]
    return int(loud[0]), int(loud[-1])


@pytest.mark.parametrize("extension", sorted(CONTAINERS))
def test_every_container_decodes_to_the_paper_input(media_dir, extension):
    path = write_video(media_dir / f"clip.{extension}", duration=3.0, **CONTAINERS[extension])
    clip = decode_clip(path, num_frames=3)
    assert clip.frames.shape == (3, 224, 224, 3) and clip.frames.dtype == np.uint8
    assert clip.waveform.shape == (NUM_SAMPLES,) and clip.waveform.dtype == np.float32
    assert clip.has_audio and clip.sample_rate == SAMPLE_RATE
    # Frames sit at the centres of three equal parts of the window centred on 1.5 s,
    # clipped to the file: 0 s, 1.5 s and the end.
    assert clip.frames.reshape(3, -1).mean(axis=1) == pytest.approx([0, 128, 246], abs=4)
    # The 3 s of sound sit in the middle of the 5.94 s window, the rest is silence.
    start, end = _sound_span(clip.waveform)
    expected_start = (WINDOW - 3.0) / 2 * SAMPLE_RATE
    assert abs(start - expected_start) < 0.05 * SAMPLE_RATE
    assert abs(end - (expected_start + 3.0 * SAMPLE_RATE)) < 0.05 * SAMPLE_RATE
    assert np.abs(clip.waveform).max() == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("layout,rate", [("stereo", 44100), ("5.1", 48000), ("mono", 8000)])
def test_any_layout_and_rate_becomes_mono_11025_without_clipping(media_dir, layout, rate):
    path = write_video(media_dir / f"layout-{layout}-{rate}.mp4", layout=layout, sample_rate=rate, duration=2.0)
    clip = decode_clip(path)
    assert clip.info.audio_rate == rate
    start, end = _sound_span(clip.waveform)
    rms = np.sqrt(np.mean(clip.waveform[start:end] ** 2))
    # The mean of the channels; AAC low-passes the LFE channel of 5.1, which loses the tone.
    audible = 5 / 6 if layout == "5.1" else 1.0
    assert rms == pytest.approx(audible * 0.5 / np.sqrt(2), rel=0.1)
    spectrum = np.abs(np.fft.rfft(clip.waveform))
    peak = np.argmax(spectrum) * SAMPLE_RATE / NUM_SAMPLES
    assert peak == pytest.approx(440, abs=2)


def test_tone_burst_lands_at_its_time_in_the_window(media_dir):
    # 10 s file, sound only between 4.8 s and 5.2 s: the centre of the window.
    burst = lambda t: np.where((t >= 4.8) & (t < 5.2), 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)  # noqa: E731
    path = write_video(media_dir / "burst.mp4", duration=10.0, fps=5, sound=burst)
    start, end = _sound_span(decode_clip(path).waveform)
    centre = NUM_SAMPLES / 2
    assert abs(start - (centre - 0.2 * SAMPLE_RATE)) < 0.03 * SAMPLE_RATE
    assert abs(end - (centre + 0.2 * SAMPLE_RATE)) < 0.03 * SAMPLE_RATE


def test_long_file_reads_only_the_centre_window(media_dir):
    path = write_video(media_dir / "long.mp4", duration=600.0, fps=1, width=32, height=32, sample_rate=8000)
    clip = decode_clip(path, num_frames=2)
    expected = [grey_for_time(t, 600.0) for t in np.floor(300 + np.array([-0.25, 0.25]) * WINDOW)]
    assert clip.frames.reshape(2, -1).mean(axis=1) == pytest.approx(expected, abs=3)
    assert np.abs(clip.waveform).min() < 0.01 and np.abs(clip.waveform).max() > 0.45
    assert clip.info.duration == pytest.approx(600.0, abs=0.1)


def test_variable_frame_rate_picks_frames_by_time_not_index(media_dir):
    times = [0.0, 0.1, 0.15, 0.2, 2.5, 2.6, 4.0, 4.9]
    path = write_video(media_dir / "vfr.mkv", video_codec="libx264", frame_times=times, duration=5.0)
    clip = decode_clip(path, num_frames=1)
    # The window is centred on the middle of the file (~2.5 s); the frame shown then is the one from 2.5 s.
    assert clip.frames.mean() == pytest.approx(grey_for_time(2.5, 5.0), abs=3)


@pytest.mark.parametrize("width,height", [(48, 96), (101, 37), (3, 5)])
def test_portrait_and_odd_sizes_are_resized_and_centre_cropped(media_dir, width, height):
    portrait = height > width

    def grey(y, x):  # the grey level says where a pixel came from: 30..210 along the long side, +0..40 across
        along, across = (y / (height - 1), x / (width - 1)) if portrait else (x / (width - 1), y / (height - 1))
        return 30 + 180 * along + 40 * across

    ys, xs = np.mgrid[0:height, 0:width]
    picture = np.repeat(np.round(grey(ys, xs))[..., None], 3, axis=2).astype(np.uint8)
    codec = "mpeg4" if width % 2 or height % 2 else "libx264"
    path = write_video(media_dir / f"size-{width}x{height}.avi", video_codec=codec, width=width, height=height,
                       audio_codec=None, image=lambda t: picture, duration=1.0)
    clip = decode_clip(path)
    assert clip.frames.shape == (1, 224, 224, 3)
    assert (clip.info.width, clip.info.height) == (width, height)
    # The frame shows the centred square of side min(width, height), scaled to 224 px: output pixel i
    # samples the source at (i + 0.5) * side / 224 - 0.5, shifted along the long side by (long - side) / 2
    # (bilinear, so a plane of grey levels stays that plane; edges clamp to the outermost pixels).
    side = min(width, height)
    offset = (np.arange(224) + 0.5) * side / 224 - 0.5
    source_y = np.clip(offset + ((height - side) / 2 if portrait else 0), 0, height - 1)
    source_x = np.clip(offset + (0 if portrait else (width - side) / 2), 0, width - 1)
    expected = grey(source_y[:, None], source_x[None, :])
    error = np.abs(clip.frames[0].astype(float) - expected[..., None])
    # Codec and YUV rounding: about 1 level on average, a few at most (a crop off by a tenth of the
    # frame, or a squeezed or flipped frame, is tens of levels off).
    assert error.mean() < 2 and error.max() < 8


def test_rotation_metadata_is_applied(media_dir):
    split = lambda t: np.concatenate(  # noqa: E731  stored landscape: left red, right blue
        [np.full((48, 48, 3), (255, 0, 0), np.uint8), np.full((48, 48, 3), (0, 0, 255), np.uint8)], axis=1)
    path = set_mp4_rotation(write_video(media_dir / "rotated.mp4", width=96, height=48, image=split), 90)
    clip = decode_clip(path)
    frame = clip.frames[0].astype(int)
    # A player turns the picture 90 degrees clockwise: red on top, blue below; portrait size.
    assert frame[20, 112, 0] > 200 and frame[20, 112, 2] < 60
    assert frame[200, 112, 2] > 200 and frame[200, 112, 0] < 60
    assert (clip.info.width, clip.info.height, clip.info.rotation % 360) == (48, 96, 270)


def test_file_without_audio_gives_silence_and_a_flag(media_dir):
    clip = decode_clip(write_video(media_dir / "silent.mp4", audio_codec=None))
    assert not clip.has_audio
    assert not clip.waveform.any()
    assert clip.info.audio_codec is None


def test_model_inputs_have_the_documented_shapes_and_ranges(media_dir):
    clip = decode_clip(write_video(media_dir / "inputs.mp4"), num_frames=4)
    waveform, frames = clip.model_inputs()
    assert waveform.shape == (1, NUM_SAMPLES) and frames.shape == (1, 4, 3, 224, 224)
    assert waveform.abs().max() <= 1 and 0 <= frames.min() and frames.max() <= 1


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"this is not a video at all" * 100, "could not be read"),
        (bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8)), "could not be read"),
    ],
)
def test_bad_bytes_raise_a_clear_media_error(media_dir, content, message):
    path = media_dir / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=message):
        decode_clip(path)


def _surviving_streams(path) -> tuple[list[float], float]:
    """Start times of the video frames that decode, and the end time of the last audio that decodes
    (read straight with PyAV, up to the first decoding error)."""
    import av

    times, audio_end = [], 0.0
    with av.open(str(path)) as container:
        try:
            for packet in container.demux():
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        times.append(frame.time)
                    else:
                        audio_end = max(audio_end, frame.time + frame.samples / frame.sample_rate)
        except av.error.FFmpegError:
            pass
    return sorted(times), audio_end


def test_truncated_file_raises_or_decodes_what_is_there(media_dir):
    whole = write_video(media_dir / "whole.mkv", video_codec="libx264", duration=3.0).read_bytes()
    # Cut inside the header: there is nothing to decode, and the message says why.
    header_only = media_dir / "truncated-200.mkv"
    header_only.write_bytes(whole[:200])
    with pytest.raises(MediaError, match=r"'truncated-200\.mkv' could not be read: .*damaged or truncated"):
        decode_clip(header_only)
    # Cut half way (as a broken download): the header (3 s) is intact, the frames and sound stop early.
    # The clip is made from what is there: the frame shown at the centre among the frames that
    # survive, and the sound that survives, then silence.
    half = media_dir / "truncated-half.mkv"
    half.write_bytes(whole[: len(whole) // 2])
    clip = decode_clip(half)
    assert clip.frames.shape == (1, 224, 224, 3) and clip.info.duration == pytest.approx(3.0, abs=0.1)
    times, audio_end = _surviving_streams(half)
    centre = clip.frame_times[0]
    assert centre == pytest.approx(clip.info.duration / 2) and 0 < audio_end < 2.5 and times[-1] < 2.5
    shown = max(t for t in times if t <= centre + 1e-6)
    assert clip.frames.mean() == pytest.approx(grey_for_time(shown, 3.0), abs=3)
    window_start = centre - WINDOW / 2  # before the file's start (0 s), where the sound begins
    start, end = _sound_span(clip.waveform)
    assert abs(start - (0.0 - window_start) * SAMPLE_RATE) < 0.05 * SAMPLE_RATE
    assert abs(end - (audio_end - window_start) * SAMPLE_RATE) < 0.05 * SAMPLE_RATE
    assert not clip.waveform[end + int(0.01 * SAMPLE_RATE) :].any()  # silence padding, exactly zero


def test_missing_file_image_and_audio_only_are_refused_clearly(media_dir):
    with pytest.raises(MediaError, match="not found"):
        decode_clip(media_dir / "nowhere.mp4")
    image = media_dir / "picture.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((40, 60, 3), np.uint8))
    with pytest.raises(MediaError, match="still image"):
        decode_clip(image)
    with pytest.raises(MediaError, match="no video stream"):
        decode_clip(write_audio(media_dir / "sound.wav"))


def test_size_limit_is_enforced_before_decoding(media_dir):
    path = write_video(media_dir / "limited.mp4")
    with pytest.raises(MediaError, match="limit"):
        decode_clip(path, max_bytes=100)


def test_image_plus_audio_makes_a_clip(media_dir):
    import cv2

    image = media_dir / "still.jpg"
    cv2.imwrite(str(image), np.full((300, 200, 3), 90, np.uint8))
    clip = clip_from_image(image, write_audio(media_dir / "voice.wav", duration=1.0), num_frames=2)
    assert clip.frames.shape == (2, 224, 224, 3) and clip.has_audio
    start, end = _sound_span(clip.waveform)
    assert (end - start) / SAMPLE_RATE == pytest.approx(1.0, abs=0.02)
    assert decode_audio(media_dir / "voice.wav").shape == (NUM_SAMPLES,)


def test_fit_square_keeps_the_centre():
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 255
    square = fit_square(image, 50)
    assert square.shape == (50, 50, 3) and square.min() == 255


def test_write_mp4_roundtrip_is_h264_aac_with_the_sound_track(media_dir):
    rng = np.random.default_rng(0)
    frames = rng.random((2, 3, 224, 224), dtype=np.float32)
    frames[0], frames[1] = 0.2, 0.8
    waveform = tone(440, 0.4)(np.arange(NUM_SAMPLES) / SAMPLE_RATE).astype(np.float32)
    path = write_mp4(media_dir / "out.mp4", frames, waveform)
    clip = decode_clip(path, num_frames=2)
    assert (clip.info.video_codec, clip.info.audio_codec) == ("h264", "aac")
    assert clip.info.duration == pytest.approx(WINDOW, abs=0.15)
    assert clip.frames.reshape(2, -1).mean(axis=1) == pytest.approx([0.2 * 255, 0.8 * 255], abs=3)
    assert np.corrcoef(clip.waveform[5000:-5000], waveform[5000:-5000])[0, 1] > 0.95
