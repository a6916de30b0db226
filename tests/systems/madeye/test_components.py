"""Backends, sources, ranking, tracking in angles, caches (acceptance 9; spec §2, §4, §9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenfold.core.assets import asset_path
from tenfold.errors import AssetError
from tenfold.systems.madeye import (
    HogPerson,
    MadEyeConfig,
    PanoramaTracker,
    Query,
    VirtualPTZ,
    Workload,
    YoloPersonOnnx,
    angle_boxes,
    dedup,
    rank,
    ranking_scores,
)
from tenfold.systems.madeye.orientation import Orientation as O
from tenfold.vision import read_image
from tenfold.vision.frames import Box
from tenfold.vision.trained import DetectorTrainConfig, load_detector_weights
from tenfold.vision.video import packaged_clip


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(asset_path("skimage-data") / "astronaut.png")


@pytest.mark.parametrize("make", [YoloPersonOnnx, HogPerson])
def test_user_backends_find_the_astronaut(make: type, astronaut: np.ndarray) -> None:
    backend = make()
    boxes = backend.detect_batch([astronaut])[0]
    people = [b for b in boxes if b.label == "person" and b.score >= MadEyeConfig().backend_person]
    assert len(people) >= 1
    assert backend.stands_for is None  # user backends weigh 1


def test_virtual_ptz_crops_a_packaged_clip() -> None:
    src = VirtualPTZ(packaged_clip("bikes", max_frames=12), width=96, height=54, hfov=120)
    left, right = src.view(O(330, 0, 1), 5), src.view(O(30, 0, 1), 5)
    zoomed = src.view(O(0, 0, 3), 5)
    assert left.image.shape == right.image.shape == zoomed.image.shape == (54, 96, 3)
    assert left.index == 5 and not np.array_equal(left.image, right.image)
    x1, _, x2, _ = src.crop_box(O(0, 0, 3), 640, 272)
    assert x2 - x1 == round(2 * np.degrees(np.arctan(0.8)) / 3 * 640 / 120)
    assert src.view(O(0, 0, 1), 2).index == 2  # going back re-opens the stream


def test_ranking_scores_follow_the_spec() -> None:
    w = Workload(
        "w",
        (
            Query("m", "count", "person"),
            Query("m", "binary", "car"),
            Query("m", "detect", "person"),
            Query("m", "agg_count", "car"),
        ),
    )
    p = Box(0, 0, 10, 10, "person")
    c = Box(0, 0, 20, 10, "car")
    outputs = {O(0, 0, 1): {"m": [p, p, c]}, O(30, 0, 1): {"m": [p]}, O(330, 0, 1): {"m": []}}
    share = {O(0, 0, 1): 0.5, O(30, 0, 1): 0.05, O(330, 0, 1): 0.0}
    s = ranking_scores(w, outputs, share)
    # count 1, binary 1, detect 0.7*1 + 0.3*1, agg 1 * bonus(0.5) = 1.0
    assert s[O(0, 0, 1)] == pytest.approx((1 + 1 + 1 + 1.0) / 4)
    # count 0.5, binary 0, detect 0.7*0.5 + 0.3*0.5, agg 0 (no cars)
    assert s[O(30, 0, 1)] == pytest.approx((0.5 + 0 + 0.5 + 0) / 4)
    assert s[O(330, 0, 1)] == 0.0
    assert rank({O(30, 0, 1): 0.5, O(0, 0, 1): 0.5, O(330, 0, 1): 0.9}) == [O(330, 0, 1), O(0, 0, 1), O(30, 0, 1)]


def test_agg_bonus_for_rarely_sent_views() -> None:
    w = Workload("w", (Query("m", "agg_count", "car"),))
    c = Box(0, 0, 20, 10, "car")
    outputs = {O(0, 0, 1): {"m": [c]}, O(30, 0, 1): {"m": [c]}, O(60, 0, 1): {"m": [c]}, O(90, 0, 1): {"m": [c]}}
    share = {O(0, 0, 1): 0.005, O(30, 0, 1): 0.03, O(60, 0, 1): 0.06, O(90, 0, 1): 0.5}
    assert [round(v, 6) for v in ranking_scores(w, outputs, share).values()] == [1.4, 1.2, 1.1, 1.0]


def test_the_same_object_in_two_views_has_one_angle_box() -> None:
    from tenfold.vision import PanoramaWorld, PTZRenderer

    r = PTZRenderer(PanoramaWorld(seed=3), 192, 108)
    a, b = O(0, 0, 1), O(0, 0, 2)
    ta, tb = r.render(a, 300).truth, r.render(b, 300).truth
    assert ta is not None and tb is not None
    common = {x.ident for x in ta.boxes} & {x.ident for x in tb.boxes}
    assert common
    ident = max(common, key=lambda i: next(x.area for x in tb.boxes if x.ident == i))
    box_a = angle_boxes([x for x in ta.boxes if x.ident == ident], a, 192, 108, 0.0)[0]
    box_b = angle_boxes([x for x in tb.boxes if x.ident == ident], b, 192, 108, 0.0)[0]
    from tenfold.vision import iou

    assert iou(box_a, box_b) > 0.6
    pooled = dedup([[box_a], [box_b]])
    assert len(pooled) == 1 and pooled[0].views in (((0, 0), (1, 0)), ((1, 0), (0, 0)))


def test_tracker_keeps_ids_across_steps() -> None:
    tracker = PanoramaTracker()
    ids = []
    for k in range(4):
        objs = dedup([[Box(10 + k, 0, 14 + k, 8, "person", 0.9), Box(-40, 0, -30, 5, "car", 0.9)]])
        ids.append(tracker.update(objs))
    assert ids[0] == ids[1] == ids[2] == ids[3]
    assert tracker.confirmed_ids == set(ids[0])


def test_corrupt_model_cache_names_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "approx-0.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(AssetError, match=str(bad)):
        load_detector_weights(DetectorTrainConfig(width=96, height=54), bad)


def test_corrupt_reference_cache_names_its_path(tmp_path: Path) -> None:
    from tenfold.systems.madeye.evaluate import _load_boxes

    bad = tmp_path / "ref.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(AssetError, match=str(bad)):
        _load_boxes(bad)


class _CentreBackend:
    """A fake user backend: one person in the middle of every frame."""

    name = "fake"
    stands_for = None

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Box]]:
        out = []
        for im in images:
            h, w = im.shape[:2]
            out.append([Box(w * 0.4, h * 0.3, w * 0.5, h * 0.8, "person", 0.9)])
        return out


def test_run_live_bootstraps_distils_and_steers() -> None:
    from tenfold.systems.madeye import run_live
    from tenfold.vision.frames import ScriptedSource

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (136, 320, 3), dtype=np.uint8) for _ in range(8)]
    source = VirtualPTZ(ScriptedSource(frames), width=96, height=54, hfov=120)
    workload = Workload("live", (Query("fake", "count", "person"),))
    report = run_live(
        source,
        {"fake": _CentreBackend()},
        workload,
        MadEyeConfig(k_explore=5, n_send=1),
        steps=3,
        bootstrap_steps=1,
        half_width=0,
        step_frames=2,
        distill_epochs=2,
    )
    assert report["region"] == 15 and report["bootstrap_views"] == 15  # pan 0 only: 5 tilts x 3 zooms
    assert report["frames_sent"] == 3 and report["views_explored"] == 6  # anchor p0t-30z1 and p0t-15z1
    assert [s["step"] for s in report["steps"]] == [1, 2, 3]
    assert all(s["counts"]["fake:person:count"] == [1] for s in report["steps"])


def test_run_live_checks_its_schedule_before_the_bootstrap() -> None:
    from tenfold.errors import ConfigError
    from tenfold.systems.madeye import run_live
    from tenfold.vision.frames import ScriptedSource

    class Counting(_CentreBackend):
        calls = 0

        def detect_batch(self, images: list[np.ndarray]) -> list[list[Box]]:
            Counting.calls += 1
            return super().detect_batch(images)

    frames = [np.zeros((136, 320, 3), np.uint8) for _ in range(8)]
    source = VirtualPTZ(ScriptedSource(frames), width=96, height=54, hfov=120)
    workload = Workload("live", (Query("fake", "count", "person"),))
    cases = [
        ({"steps": 0}, "config field 'steps' = 0: must be in [1, inf]"),
        ({"bootstrap_steps": 0}, "config field 'bootstrap_steps' = 0: must be in [1, inf]"),
        ({"step_frames": 0}, "config field 'step_frames' = 0: must be in [1, inf]"),
        ({"steps": 4}, "config field 'steps' = 4: with bootstrap_steps=1 and step_frames=2 the run needs frame 8, "
         "past the source's 8 frames"),
        ({"k": 6}, "config field 'k_explore' = 6: must be <= the region's 5 pan/tilt cells"),
    ]
    for change, message in cases:
        kw: dict[str, int] = {"steps": 3, "bootstrap_steps": 1, "step_frames": 2} | change
        k = kw.pop("k", 5)
        with pytest.raises(ConfigError) as info:
            run_live(source, {"fake": Counting()}, workload, MadEyeConfig(k_explore=k, n_send=1), half_width=0,
                     **kw)  # type: ignore[arg-type]
        assert str(info.value) == message
    assert Counting.calls == 0


def test_server_distils_with_its_own_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    import tenfold.vision.trained as trained
    from tenfold.systems.madeye import ApproxModel, MadEyeCamera, MadEyeServer, OrientationGrid, SentFrame

    seen: dict[str, object] = {}

    def fake_fit(config: object, images: object, boxes: object, **kw: object) -> object:
        seen.update(kw)
        return kw["init"]

    monkeypatch.setattr(trained, "fit_detector", fake_fit)
    detector = type("Det", (), {"config": None})()
    workload = Workload("w", (Query("m", "count", "person"),))
    camera_cfg = MadEyeConfig()  # the camera model's config keeps the defaults (6 epochs, lr 1e-4, batch 4)
    camera = MadEyeCamera({"m": ApproxModel("m", detector, camera_cfg)},
                          OrientationGrid.default().region(O(0, 0, 1)), workload)
    server = MadEyeServer({"m": _CentreBackend()}, workload,
                          MadEyeConfig(distill_every=1, distill_epochs=1, distill_lr=0.5, distill_batch=64, seed=7))
    server.process([SentFrame(0, O(0, 0, 1), np.zeros((108, 192, 3), np.uint8))])
    assert server.due and server.distill_update(camera) == {"m": 1}
    assert {k: seen[k] for k in ("epochs", "lr", "batch", "seed", "heads_only")} == {
        "epochs": 1, "lr": 0.5, "batch": 64, "seed": 7, "heads_only": True
    }
