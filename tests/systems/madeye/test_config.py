"""Bad input names the value (spec §9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenfold.errors import ConfigError, UnknownNameError
from tenfold.systems.madeye import (
    WORKLOADS,
    Equirect360Video,
    MadEyeCamera,
    MadEyeConfig,
    OrientationGrid,
    Query,
    SourceError,
    Workload,
    load_backend,
    parse_query,
)
from tenfold.systems.madeye.orientation import Orientation


def test_k_below_one_and_n_above_k() -> None:
    with pytest.raises(ConfigError, match=r"'k_explore' = 0"):
        MadEyeConfig(k_explore=0)
    with pytest.raises(ConfigError, match="n_send=3 exceeds k_explore=2"):
        MadEyeConfig(k_explore=2, n_send=3)


def test_k_larger_than_the_region() -> None:
    region = OrientationGrid.default().region(Orientation(0, 0, 1), 0, min_size=1)  # 5 cells
    with pytest.raises(ConfigError, match=r"'k_explore' = 6: must be <= the region's 5"):
        MadEyeCamera(
            {"m": object()},
            region,
            Workload("w", (Query("m", "count", "person"),)),  # type: ignore[dict-item]
            k_explore=6,
            n_send=1,
        )


@pytest.mark.parametrize("field", ["camera_person", "camera_car", "backend_person", "backend_car"])
def test_thresholds_outside_unit_interval(field: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{field}' = 1.5: must be in \[0.0, 1.0\]"):
        MadEyeConfig(**{field: 1.5})


def test_unknown_task_object_and_model_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"'task' = 'track': must be one of 'binary', 'count', 'detect', 'agg_count'"):
        Query("small-192", "track", "person")
    with pytest.raises(ConfigError, match=r"'object' = 'dog': must be one of 'person', 'car'"):
        parse_query("dog:count")
    with pytest.raises(ConfigError, match=r"'model' = 'yolo9': must be one of 'small-128', 'small-192'"):
        Workload("w", (Query("yolo9", "count", "person"),)).check_models(["small-192", "small-128"])
    with pytest.raises(UnknownNameError, match="unknown madeye backend 'resnet'; known: small-128"):
        load_backend("resnet")


def test_empty_workload() -> None:
    with pytest.raises(ConfigError, match="empty workload"):
        Workload("w", ())


def test_named_workloads_match_the_spec() -> None:
    w1, w2, w3 = (WORKLOADS.get(n) for n in ("W1", "W2", "W3"))
    assert [str(q) for q in w1.queries] == ["small-192:person:count", "small-192:car:detect", "small-192:person:binary"]
    assert len(w2) == 8 and len(w2.models) == 2 and not w2.aggregate
    assert len(w3) == 19 and len(w3.models) == 4 and len(w3.aggregate) == 3


def test_equirect_video_rejects_missing_and_non_2to1(tmp_path: Path) -> None:
    from tenfold.vision.video import clip_path

    with pytest.raises(SourceError, match=r"nope\.mp4: no such 360-degree video file"):
        Equirect360Video(tmp_path / "nope.mp4")
    with pytest.raises(ConfigError, match=r"its shape is 640x272"):
        Equirect360Video(clip_path("bikes"))


def test_equirect_video_projects_a_2to1_file(tmp_path: Path) -> None:
    import av

    path = tmp_path / "pano.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 256, 128, "yuv420p"
        for i in range(3):
            img = np.zeros((128, 256, 3), np.uint8)
            img[:, 128:] = 200  # azimuth 180..360 is bright
            img[:, :, 1] = i * 10
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    src = Equirect360Video(path, width=64, height=36)
    front, back = src.view(Orientation(90, 0, 1), 1), src.view(Orientation(270, 0, 1), 1)
    assert front.image.shape == (36, 64, 3) and front.index == 1
    assert back.image[..., 0].mean() > front.image[..., 0].mean() + 100
