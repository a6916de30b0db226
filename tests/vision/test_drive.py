"""The drive world: recurring families, correlated frames, photometrics, crops, small CNN."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tenfold.errors import ConfigError, UnknownNameError
from tenfold.vision import (
    CLASSES,
    FAMILIES,
    ClassifierTrainConfig,
    DriveConfig,
    DriveSource,
    DriveWorld,
    train_classifier,
)

SMALL = DriveConfig(segment_frames=90)


@pytest.fixture(scope="module")
def world() -> DriveWorld:
    return DriveWorld(SMALL, seed=3)


def test_families_recur_without_back_to_back_repeats(world: DriveWorld) -> None:
    sched = world.schedule
    assert len(sched) == 12 and len(set(sched)) == 6
    assert all(sched.count(f) == 2 for f in set(sched))
    assert all(a != b for a, b in itertools.pairwise(sched))
    assert world.render(0).truth is not None
    assert world.render(95).truth.scene == sched[1]  # type: ignore[union-attr]


def test_consecutive_frames_are_correlated(world: DriveWorld) -> None:
    a, b = world.render(30).image.astype(float), world.render(31).image.astype(float)
    far = world.render(30 + 90).image.astype(float)
    assert np.abs(a - b).mean() < 0.5 * np.abs(a - far).mean()


def test_families_change_photometrics_and_priors() -> None:
    day = DriveWorld(DriveConfig(segment_frames=30, families=("day", "night"), families_per_seed=2, repeats=1), 0)
    frames = {day.render(i).truth.scene: day.render(i).image for i in (10, 40)}  # type: ignore[union-attr]
    assert frames["night"].mean() < 0.6 * frames["day"].mean()
    assert FAMILIES.get("tunnel").priors[CLASSES.index("person")] == 0.0
    tunnel = DriveWorld(DriveConfig(segment_frames=60, families=("tunnel",), families_per_seed=1, repeats=1), 1)
    labels = {b.label for i in range(0, 60, 5) for b in tunnel.render(i).truth.boxes}  # type: ignore[union-attr]
    assert labels and labels <= {"car", "truck", "bus"}
    assert FAMILIES.get("rural").scale < FAMILIES.get("urban").scale


def test_same_seed_same_pixels() -> None:
    assert DriveWorld(SMALL, 5).render(200).image.tobytes() == DriveWorld(SMALL, 5).render(200).image.tobytes()
    assert DriveWorld(SMALL, 5).render(200).image.tobytes() != DriveWorld(SMALL, 6).render(200).image.tobytes()


def test_crops_are_labelled_squares(world: DriveWorld) -> None:
    crops = [c for i in range(0, 1080, 45) for c in world.crops(world.render(i), size=32)]
    assert len(crops) > 30
    assert all(c.image.shape == (32, 32, 3) and c.label in CLASSES and c.box.height >= 8 for c in crops)
    assert len({c.label for c in crops}) >= 4


def test_small_cnn_learns_crops_above_chance() -> None:
    world = DriveWorld(DriveConfig(segment_frames=150), seed=11)
    crops = [c for i in range(0, world.n_frames, 9) for c in world.crops(world.render(i))]
    train, test = crops[: len(crops) * 3 // 4], crops[len(crops) * 3 // 4 :]
    cfg = ClassifierTrainConfig(epochs=6, channels=(16, 32, 48, 64), embedding=64)
    model = train_classifier([c.image for c in train], [c.label for c in train], cfg, cache=False)
    acc = model.accuracy([c.image for c in test], [c.label for c in test])
    majority = max(sum(c.label == k for c in test) for k in CLASSES) / len(test)
    assert acc > majority + 0.1
    assert model.embed([test[0].image]).shape == (1, 64)
    assert "trained in-process" in model.name


def test_bad_config_and_names() -> None:
    with pytest.raises(UnknownNameError, match="unknown scene family 'desert'; known: day, fog"):
        DriveConfig(families=("desert",))
    with pytest.raises(ConfigError, match="families_per_seed"):
        DriveConfig(families=("day",), families_per_seed=2)
    with pytest.raises(ConfigError, match="'index'"):
        DriveWorld(SMALL).render(10**6)
    with pytest.raises(ConfigError, match="'start'"):
        DriveSource(DriveWorld(SMALL), start=-1)
