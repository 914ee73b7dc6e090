"""Small media files written by the tests themselves, with content that can be checked.

Frame brightness encodes time (grey level = 255 * t / duration), so a test can tell which
frame the decoder picked; audio is a tone whose placement and level are known.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_FRAME = 1024


def grey_for_time(time: float, duration: float) -> int:
    return int(round(255 * min(max(time / duration, 0.0), 1.0)))


def tone(frequency: float = 440.0, amplitude: float = 0.5) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: amplitude * np.sin(2 * np.pi * frequency * t)


def write_video(
    path: Path,
    *,
    video_codec: str = "libx264",
    audio_codec: str | None = "aac",
    container_format: str | None = None,
    width: int = 64,
    height: int = 48,
    fps: int = 10,
    duration: float = 3.0,
    sample_rate: int = 22050,
    layout: str = "mono",
    sound: Callable[[np.ndarray], np.ndarray] | None = None,
    frame_times: list[float] | None = None,
    image: Callable[[float], np.ndarray] | None = None,
) -> Path:
    """Write a video whose frame at time t is `image(t)` (default: uniform grey for t) and whose
    audio (every channel) is `sound(t)` (default: a 440 Hz tone). `frame_times` gives
    variable-frame-rate presentation times in seconds."""
    sound = sound or tone()
    times = frame_times if frame_times is not None else [i / fps for i in range(int(round(duration * fps)))]
    image = image or (lambda t: np.full((height, width, 3), grey_for_time(t, duration), np.uint8))
    with av.open(str(path), "w", format=container_format) as container:
        video = container.add_stream(video_codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        if frame_times is not None:
            video.codec_context.time_base = Fraction(1, 1000)
        audio = None
        if audio_codec is not None:
            audio = container.add_stream(audio_codec, rate=sample_rate, layout=layout)
        for index, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(image(time), format="rgb24")
            if frame_times is not None:
                frame.pts, frame.time_base = int(round(time * 1000)), Fraction(1, 1000)
            else:
                frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            channels = audio.codec_context.channels
            total = int(round(duration * sample_rate))
            for start in range(0, total, AUDIO_FRAME):
                t = np.arange(start, min(total, start + AUDIO_FRAME)) / sample_rate
                planes = np.repeat(sound(t)[None].astype(np.float32), channels, axis=0)
                frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = sample_rate, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode())
    return path


def write_audio(path: Path, *, duration: float = 2.0, sample_rate: int = 16000, sound=None) -> Path:
    """A WAV file holding `sound(t)` (default: a 440 Hz tone)."""
    sound = sound or tone()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        t = np.arange(int(duration * sample_rate)) / sample_rate
        frame = av.AudioFrame.from_ndarray(sound(t)[None].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def set_mp4_rotation(path: Path, degrees_clockwise: int) -> Path:
    """Rewrite the video track's display matrix in an mp4's `tkhd` box, as phones do."""
    data = bytearray(path.read_bytes())
    matrices = {
        90: (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30),
        180: (-65536, 0, 0, 0, -65536, 0, 0, 0, 1 << 30),
        270: (0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30),
    }
    position = 0
    while (found := data.find(b"tkhd", position)) >= 0:
        box = found - 4
        assert data[box + 8] == 0, "only version-0 tkhd boxes are handled"
        width = struct.unpack(">I", data[box + 84 : box + 88])[0]
        if width:  # the video track (audio tracks have zero width)
            data[box + 48 : box + 84] = struct.pack(">9i", *matrices[degrees_clockwise])
        position = found + 4
    path.write_bytes(bytes(data))
    return path
