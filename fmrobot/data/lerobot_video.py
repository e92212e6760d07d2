"""Camera streams of a LeRobot dataset as MP4 files, written and read with PyAV (FFmpeg's libraries).

All episodes of one camera go into one file, one video frame per dataset row, frame k of the
file shown at k / fps seconds: LeRobot finds a row's image at the episode's `from_timestamp`
plus the row's `timestamp`, so the two must agree to the frame.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

CODEC = "h264"  # decodable everywhere (LeRobot's own default, AV1, needs a newer FFmpeg to read)
ENCODER = "libx264"
PIX_FMT = "yuv420p"
# A keyframe every other frame, as LeRobot writes: a training loader seeks to random frames. No B-frames:
# decoding order is display order, so episodes' files join by copying packets (concat_videos).
ENCODER_OPTIONS = {"g": "2", "bf": "0", "crf": "23", "preset": "veryfast"}


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int, width: int, height: int) -> int:
    """Encode RGB frames (height, width, 3, uint8) into an MP4 at `fps`; return how many were written."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(ENCODER, rate=fps, options=ENCODER_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = width, height, PIX_FMT
        stream.codec_context.time_base = Fraction(1, fps)  # frame k at k / fps seconds
        stream.thread_count = 1  # the machine's cores belong to the episodes being simulated
        for image in frames:
            if image.shape != (height, width, 3):
                raise ValueError(f"video frame {count} of {path} has shape {image.shape}; "
                                 f"expected {(height, width, 3)}")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = count, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        for packet in stream.encode():  # what the encoder still holds
            container.mux(packet)
    return count


def concat_videos(paths: Sequence[Path], out: Path, fps: int) -> int:
    """Join MP4s written by `write_video` with the same settings into one, copying their packets (no
    re-encoding): each file's frames follow the previous file's. Returns the number of frames."""
    import av

    out.parent.mkdir(parents=True, exist_ok=True)
    frames = 0
    with av.open(str(out), mode="w") as container:
        stream = None
        for path in paths:
            with av.open(str(path)) as source:
                video = source.streams.video[0]
                if stream is None:
                    stream = container.add_stream_from_template(video)
                shift = round(Fraction(frames, fps) / video.time_base)
                for packet in source.demux(video):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = stream
                    container.mux(packet)
                    frames += 1
    return frames


def read_video(path: Path, start: int = 0, stop: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB frame) of frames start..stop (exclusive) of an MP4, in order."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            if stop is not None and index >= stop:
                break
            if index >= start:
                yield float(frame.time), frame.to_ndarray(format="rgb24")


def video_fps(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return float(container.streams.video[0].average_rate)
