"""Media I/O: any common video file -> a decoded clip (the paper's model input), and back.

A clip is T evenly spaced RGB frames plus a mono waveform of `num_samples` samples at
`sample_rate`, centred on the middle of the file (Tian & Xu take 65535 samples at
11025 Hz, about 5.94 s, with one frame at the centre). Only the window that is needed is
read, so very long files cost no more than short ones. Every failure a person can cause
(no video stream, an image, a damaged or empty file) raises `MediaError` with a message
meant for that person.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from . import FRAME_SIZE, NUM_SAMPLES, SAMPLE_RATE

STILL_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe")
STILL_IMAGE_CODECS = ("png", "mjpeg", "webp", "bmp", "tiff")


class MediaError(Exception):
    """A file that cannot be turned into a clip. The message is written for the user."""


@dataclass(frozen=True)
class MediaInfo:
    """What the source file was: its container, size as displayed, duration and streams."""

    path: str
    container: str
    duration: float
    width: int
    height: int
    rotation: int
    fps: float | None
    video_codec: str
    audio_codec: str | None
    audio_rate: int | None
    audio_channels: int | None


@dataclass
class Clip:
    """A decoded clip, as the models see it.

    frames `(T, S, S, 3)` uint8 RGB; waveform `(L,)` float32 in [-1, 1] at `sample_rate`;
    frame_times `(T,)` seconds in the source; `has_audio` is False when the source had no
    audio track (the waveform is then silence).
    """

    frames: np.ndarray
    waveform: np.ndarray
    sample_rate: int
    frame_times: np.ndarray
    has_audio: bool
    info: MediaInfo | None = None

    def model_inputs(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Batch of one: waveform `(1, L)` float in [-1, 1], frames `(1, T, 3, S, S)` float in [0, 1]."""
        waveform = torch.from_numpy(self.waveform).to(device).unsqueeze(0)
        frames = torch.from_numpy(self.frames).to(device).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)
        return waveform, frames


def fit_square(image: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """Resize `(H, W, 3)` uint8 so its shorter side is `size`, then centre-crop to `(size, size, 3)`."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_height, new_width = max(size, round(height * scale)), max(size, round(width * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    top, left = (new_height - size) // 2, (new_width - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def decode_clip(
    path: str | os.PathLike,
    num_frames: int = 1,
    sample_rate: int = SAMPLE_RATE,
    num_samples: int = NUM_SAMPLES,
    size: int = FRAME_SIZE,
    max_bytes: int | None = None,
    centre: float | None = None,
) -> Clip:
    """Decode a video file (mp4, webm, mov, mkv, avi, ...) into a `Clip`.

    The window of `num_samples / sample_rate` seconds is centred on `centre` seconds from the
    start of the file (an annotated event), by default on the middle of the file;
    the T = `num_frames` frames sit at the centres of T equal parts of that window (T = 1:
    the centre frame). Audio of any layout and rate is downmixed to mono and resampled;
    where the window reaches past the file, the waveform is padded with silence. Rotation
    metadata is applied before the frames are resized and centre-cropped to `size`.
    """
    if num_frames < 1 or num_samples < 1:
        raise ValueError("num_frames and num_samples must be at least 1")
    container = _open(path, max_bytes)
    with container:
        if not container.streams.video:
            kind = "audio only" if container.streams.audio else "no video or audio stream"
            raise MediaError(f"'{Path(path).name}' has no video stream ({kind}). Please choose a video file.")
        video = container.streams.video[0]
        if container.format.name in STILL_IMAGE_FORMATS or (
            video.codec_context.name in STILL_IMAGE_CODECS and (video.frames or 0) <= 1
        ):
            raise MediaError(
                f"'{Path(path).name}' is a still image, not a video. "
                "Upload it together with an audio file, or choose a video."
            )
        audio = container.streams.audio[0] if container.streams.audio else None
        start, duration = _time_span(container, video)
        if duration <= 0:
            raise MediaError(f"'{Path(path).name}' has zero length: there is nothing to decode.")
        window = num_samples / sample_rate
        window_start = start + (duration / 2 if centre is None else centre) - window / 2
        targets = window_start + (np.arange(num_frames) + 0.5) * window / num_frames
        targets = np.clip(targets, start, start + duration)
        raw_frames, rotation = _read_frames(container, video, targets, path)
        frames = np.stack([fit_square(_rotate(frame, rotation), size) for frame in raw_frames])
        waveform = np.zeros(num_samples, dtype=np.float32)
        if audio is not None:
            waveform = _read_audio(container, audio, window_start, num_samples, sample_rate)
        height, width = raw_frames[0].shape[:2]
        if rotation % 180:
            height, width = width, height
        info = MediaInfo(
            path=str(path),
            container=container.format.name,
            duration=duration,
            width=width,
            height=height,
            rotation=rotation,
            fps=float(video.average_rate) if video.average_rate else None,
            video_codec=video.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
        )
    return Clip(frames, waveform, sample_rate, targets, has_audio=audio is not None, info=info)


def decode_audio(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    num_samples: int = NUM_SAMPLES,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Decode the centre window of an audio (or video) file's first audio track.

    Returns `(num_samples,)` float32 in [-1, 1], mono at `sample_rate`, silence-padded.
    """
    container = _open(path, max_bytes)
    with container:
        if not container.streams.audio:
            raise MediaError(f"'{Path(path).name}' has no audio track.")
        audio = container.streams.audio[0]
        start, duration = _time_span(container, audio)
        window_start = start + duration / 2 - num_samples / sample_rate / 2
        return _read_audio(container, audio, window_start, num_samples, sample_rate)


def load_image(path: str | os.PathLike, size: int = FRAME_SIZE, max_bytes: int | None = None) -> np.ndarray:
    """A still image (PNG, JPEG, WebP, BMP ...), EXIF-rotated, as `(size, size, 3)` uint8 RGB."""
    _check_file(path, max_bytes)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"'{Path(path).name}' is not an image this app can read.")
    return fit_square(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size)


def clip_from_image(
    image_path: str | os.PathLike,
    audio_path: str | os.PathLike | None = None,
    num_frames: int = 1,
    sample_rate: int = SAMPLE_RATE,
    num_samples: int = NUM_SAMPLES,
    size: int = FRAME_SIZE,
    max_bytes: int | None = None,
) -> Clip:
    """A clip from a still image (repeated T times) and, optionally, an audio file."""
    image = load_image(image_path, size, max_bytes)
    waveform = np.zeros(num_samples, dtype=np.float32)
    if audio_path is not None:
        waveform = decode_audio(audio_path, sample_rate, num_samples, max_bytes)
    window = num_samples / sample_rate
    times = (np.arange(num_frames) + 0.5) * window / num_frames
    frames = np.repeat(image[None], num_frames, axis=0)
    return Clip(frames, waveform, sample_rate, times, has_audio=audio_path is not None)


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray | torch.Tensor,
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    fps: int = 8,
) -> Path:
    """Write an H.264 + AAC mp4 that browsers play: the T frames shown one after another over
    the waveform's duration, with the waveform as its sound track.

    frames `(T, H, W, 3)` uint8, or float in [0, 1] either `(T, H, W, 3)` or `(T, 3, H, W)`;
    waveform `(L,)` float in [-1, 1]. AAC is lossy: an adversarial perturbation far below the
    signal survives only approximately in the file (the app plays the exact one as WAV).
    """
    frames = _as_uint8_frames(frames)
    samples = np.clip(_as_numpy(waveform).astype(np.float32).reshape(-1), -1.0, 1.0)
    count = max(1, round(len(samples) / sample_rate * fps))
    exact_rate = Fraction(count * sample_rate, len(samples))  # video lasts exactly as long as the sound
    height, width = frames.shape[1] + frames.shape[1] % 2, frames.shape[2] + frames.shape[2] % 2
    path = Path(path)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=exact_rate, options={"crf": "18", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=sample_rate, layout="mono")
        audio.bit_rate = 128_000
        for index in range(count):
            image = frames[min(len(frames) - 1, index * len(frames) // count)]
            image = np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0)), mode="edge")
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        sound = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        sound.sample_rate, sound.pts = sample_rate, 0
        container.mux(audio.encode(sound))
        container.mux(audio.encode())
    return path


def _as_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def _as_uint8_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    array = _as_numpy(frames)
    if array.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3) or (T, 3, H, W), got shape {array.shape}")
    if array.shape[-1] != 3 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)
    if array.dtype != np.uint8:
        array = np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def _check_file(path: str | os.PathLike, max_bytes: int | None) -> None:
    name = Path(path).name
    if not os.path.isfile(path):
        raise MediaError(f"'{name}' was not found.")
    size = os.path.getsize(path)
    if size == 0:
        raise MediaError(f"'{name}' is empty (0 bytes).")
    if max_bytes is not None and size > max_bytes:
        raise MediaError(f"'{name}' is {size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB.")


def _open(path: str | os.PathLike, max_bytes: int | None) -> av.container.InputContainer:
    _check_file(path, max_bytes)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise MediaError(
            f"'{Path(path).name}' could not be read: it is not a media file, or it is damaged or truncated ({error})."
        ) from error


def _time_span(container: av.container.InputContainer, stream: av.stream.Stream) -> tuple[float, float]:
    """(start, duration) in seconds of a stream, falling back to the container's figures."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration is not None and stream.time_base is not None:
        return start, float(stream.duration * stream.time_base)
    if container.duration is not None:
        return start, container.duration / av.time_base
    return start, _scan_duration(container, stream, start)


def _scan_duration(container: av.container.InputContainer, stream: av.stream.Stream, start: float) -> float:
    """Duration of a file whose header does not state it: the end of its last packet."""
    end = start
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    container.seek(0)
    return end - start


def _seek(container: av.container.InputContainer, stream: av.stream.Stream, seconds: float) -> None:
    """Seek to the last keyframe at or before `seconds` (each read starts with one, since
    decoding one stream consumes the others' packets)."""
    try:
        container.seek(max(0, int(seconds / stream.time_base)), stream=stream, backward=True)
    except av.error.FFmpegError:
        container.seek(0)


def _decode(container: av.container.InputContainer, stream: av.stream.Stream):
    """Decoded frames of one stream; a damaged or truncated tail ends the stream early."""
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError:
        return


def _read_frames(container, stream, targets: np.ndarray, path) -> tuple[list[np.ndarray], int]:
    """The frame shown at each target time (the last frame starting at or before it), as RGB
    arrays, and the stream's rotation in degrees (counter-clockwise, as stored)."""
    _seek(container, stream, float(targets[0]))
    picks: list[av.VideoFrame | None] = [None] * len(targets)
    index = 0
    previous = None
    for frame in _decode(container, stream):
        time = frame.time if frame.time is not None else 0.0
        while index < len(targets) and time > targets[index] + 1e-6:
            picks[index] = previous if previous is not None else frame
            index += 1
        if index == len(targets):
            break
        previous = frame
    if previous is None and picks[0] is None:
        raise MediaError(f"'{Path(path).name}' has no decodable video frames: it is empty, damaged or truncated.")
    picks = [pick if pick is not None else previous for pick in picks]
    rotation = int(round(picks[0].rotation or 0))
    return [pick.to_ndarray(format="rgb24") for pick in picks], rotation


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply display-matrix rotation (degrees counter-clockwise) so the frame looks as shown by players."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _resampled(container, stream, sample_rate: int, stop_after: float | None = None) -> tuple[float, np.ndarray]:
    """Decode an audio stream from the current position (to `stop_after` seconds, or the end),
    resampled and downmixed to mono as the mean of its channels (so that stereo or 5.1 never
    clips). Returns the time of the first decoded sample and the samples `(n,)` float32."""
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks: list[np.ndarray] = []
    first_time = None
    for frame in _decode(container, stream):
        if first_time is None:
            first_time = frame.time if frame.time is not None else 0.0
        chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(frame))
        if stop_after is not None and frame.time is not None and frame.time > stop_after:
            break
    chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(None))
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return first_time or 0.0, samples


def _read_audio(container, stream, window_start: float, num_samples: int, sample_rate: int) -> np.ndarray:
    """The window `[window_start, window_start + num_samples / sample_rate)` of an audio stream,
    mono, clipped to [-1, 1], silence where the file has no sound."""
    _seek(container, stream, window_start)
    first_time, samples = _resampled(container, stream, sample_rate, stop_after=window_start + num_samples / sample_rate)
    waveform = np.zeros(num_samples, dtype=np.float32)
    offset = int(math.floor((first_time - window_start) * sample_rate + 0.5))
    source_start, target_start = max(0, -offset), max(0, offset)
    count = min(len(samples) - source_start, num_samples - target_start)
    if count > 0:
        waveform[target_start : target_start + count] = samples[source_start : source_start + count]
    return np.clip(waveform, -1.0, 1.0)


def read_audio(source: str | os.PathLike | bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A whole audio track (the first one of a file, or of a file's bytes) as `(n,)` float32
    in [-1, 1], mono at `sample_rate`: how the asset bank reads its recordings."""
    name = "audio data" if isinstance(source, bytes) else f"'{Path(source).name}'"
    if not isinstance(source, bytes):
        _check_file(source, None)
    try:
        container = av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except av.error.FFmpegError as error:
        raise MediaError(f"{name} could not be read as audio ({error}).") from error
    with container:
        if not container.streams.audio:
            raise MediaError(f"{name} has no audio track.")
        _, samples = _resampled(container, container.streams.audio[0], sample_rate)
    return np.clip(samples, -1.0, 1.0)
