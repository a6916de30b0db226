"""Bad input names the value (spec §9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenfold.errors import ConfigError, UnknownNameError
from tenfold.systems.madeye import (
    WORKLOADS,
    AccuracyBenchConfig,
    EpsilonGreedyMAB,
    Equirect360Video,
    MadEyeCamera,
    MadEyeConfig,
    OnvifPTZ,
    OrientationGrid,
    Query,
    SimConfig,
    SimPanorama,
    SourceError,
    VirtualPTZ,
    Workload,
    load_backend,
    parse_query,
    prepare,
)
from tenfold.systems.madeye.backends import backend_name
from tenfold.systems.madeye.orientation import Orientation

from .conftest import write_pano


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
    src = Equirect360Video(write_pano(tmp_path / "pano.mp4"), width=64, height=36)
    assert src.n_frames == 3
    front, back = src.view(Orientation(90, 0, 1), 1), src.view(Orientation(270, 0, 1), 1)
    assert front.image.shape == (36, 64, 3) and front.index == 1
    assert back.image[..., 0].mean() > front.image[..., 0].mean() + 100


def test_negative_seeds_name_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        MadEyeConfig(seed=-1)
    assert str(info.value) == "config field 'seed' = -1: must be in [0, inf]"
    with pytest.raises(ConfigError) as info:
        AccuracyBenchConfig(seeds=(0, -1))
    assert str(info.value) == "config field 'seeds' = (0, -1): must all be >= 0"
    with pytest.raises(ConfigError, match=r"^config field 'seed' = -2: must be in \[0, inf\]$"):
        SimPanorama(-2)
    with pytest.raises(ConfigError, match=r"^config field 'seed' = -3: must be in \[0, inf\]$"):
        EpsilonGreedyMAB(2, seed=-3)


def test_accuracy_bench_config_checks_k_and_repeats_up_front() -> None:
    def error(**fields: object) -> str:
        with pytest.raises(ConfigError) as info:
            AccuracyBenchConfig(**fields)  # type: ignore[arg-type]
        return str(info.value)

    cells = "the ablations send N=2, and K may not exceed the region's 25 pan/tilt cells"
    k0 = error(k_explore=0, n_values=(1,), headline_n=1)  # named k_explore, not n_values
    assert k0 == f"config field 'k_explore' = 0: must be in [2, 25]: {cells}"
    assert error(k_explore=30) == f"config field 'k_explore' = 30: must be in [2, 25]: {cells}"
    assert error(k_sweep=(1,)) == (
        "config field 'k_sweep' = (1,): each must be in [2, 25]: at least every N of n_values, at most the "
        "region's 25 pan/tilt cells"
    )
    assert error(k_sweep=(5, 26)).startswith("config field 'k_sweep' = (5, 26): each must be in [2, 25]")
    assert error(seeds=(0, 0)) == "config field 'seeds' = (0, 0): must not repeat a value"
    assert error(workloads=("W1", "W1")) == "config field 'workloads' = ('W1', 'W1'): must not repeat a value"
    assert AccuracyBenchConfig.full().k_sweep == (5, 15)  # the full grid stays valid


def test_bootstrap_never_overlaps_the_evaluated_steps() -> None:
    with pytest.raises(ConfigError) as info:
        SimConfig(bootstrap_frac=0.0)
    assert str(info.value) == "config field 'bootstrap_frac' = 0.0: must be in (0.0, 0.9]"
    tiny = SimConfig(eval_steps=1, bootstrap_frac=0.1)  # 1 * 0.1 / 0.9 rounds to 0: one step anyway
    assert tiny.bootstrap_steps == 1 and tiny.total_steps == 2
    assert SimConfig(eval_steps=200).bootstrap_steps == 86  # the benchmark's bootstrap is unchanged


def test_k_larger_than_the_region_fails_before_any_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenfold.systems.madeye import SmallDetectorBackend

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained a backend before checking K")

    monkeypatch.setattr(SmallDetectorBackend, "trained", no_training)
    with pytest.raises(ConfigError) as info:
        prepare(object(), WORKLOADS.get("W1"), config=MadEyeConfig(k_explore=26))  # type: ignore[arg-type]
    assert str(info.value) == "config field 'k_explore' = 26: must be <= the region's 25 pan/tilt cells"
    assert SimConfig(region_half_width=30).region_cells == 35  # widened to +-90: 7 pans x 5 tilts


@pytest.mark.parametrize("uri", ["onvif://admin@cam:abc", "onvif://cam:99999", "onvif://cam:0"])
def test_onvif_port_must_be_an_integer_in_range(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        OnvifPTZ(uri)
    assert str(info.value) == f"config field 'source' = {uri!r}: port must be an integer in 1..65535"


def test_virtual_ptz_rejects_a_pan_outside_the_video() -> None:
    from tenfold.vision.frames import ScriptedSource

    src = VirtualPTZ(ScriptedSource([np.zeros((90, 320, 3), np.uint8)]), hfov=120)
    src.check_region(OrientationGrid.default().region(Orientation(0, 0, 1)))  # pans -60..60 fit
    with pytest.raises(ConfigError) as info:
        src.check_region(OrientationGrid.default().region(Orientation(30, 0, 1)))
    assert str(info.value) == "config field 'orientation' = 'p90t-30z1': pan 90 is outside the video's field " \
        "of view (hfov=120 spans pan -60..60)"
    with pytest.raises(ConfigError, match="pan -90 is outside"):
        src.view(Orientation(270, 0, 1), 0)
    # Tilt is clamped (documented): tilt 30 lies past this frame's +-16.9 degrees, yet has a view.
    assert src.crop_box(Orientation(0, 30, 1), 320, 90)[1] == 0


def test_queries_name_models_with_colons() -> None:
    assert parse_query("torchvision:frcnn.pt:car:detect") == Query("torchvision:frcnn.pt", "detect", "car")
    assert parse_query("person:count", default_model="hog") == Query("hog", "count", "person")


def test_backend_names_are_known_before_loading(tmp_path: Path) -> None:
    for spec in ("hog", "haar"):
        assert backend_name(spec) == load_backend(spec).name
    assert backend_name("haar") == "haar-fullbody" and backend_name("small-128") == "small-128"
    with pytest.raises(ConfigError) as info:
        backend_name(f"torchvision:{tmp_path / 'none.pt'}")
    assert str(info.value) == f"config field 'backend' = 'torchvision:{tmp_path / 'none.pt'}': names no file"
    (tmp_path / "frcnn.pt").write_bytes(b"")
    assert backend_name(f"torchvision:{tmp_path / 'frcnn.pt'}") == "torchvision:frcnn.pt"
    with pytest.raises(UnknownNameError, match="unknown madeye backend 'resnet'"):
        backend_name("resnet")
