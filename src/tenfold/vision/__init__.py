"""tenfold.vision: video sources, procedural worlds, packaged and trained models, FLOP clock.

- Frames: :class:`Frame`, :class:`FrameSource`, :class:`Box`, :class:`Truth`; sources
  :class:`VideoSource` (PyAV), :func:`packaged_clip`, :class:`ImageFolderSource`,
  :class:`ScriptedSource` (fake), :class:`PanoramaSource`, :class:`DriveSource`.
- Worlds: :class:`PanoramaWorld` with :class:`PTZRenderer` and the :class:`Orientation`
  grid; :class:`DriveWorld` with its scene :data:`FAMILIES`; registry :data:`WORLDS`.
- Models (registry :data:`MODELS`): :class:`EfficientNetLite0`, :class:`HogPerson`,
  :class:`HaarBody`, :class:`YoloPerson`, :class:`SmallDetector` and :class:`SmallCNN`
  (trained in-process, cached by config hash).
- Compute: :class:`DeviceProfile`, :func:`count_flops`, :class:`FlopClock`.
- Metrics: :func:`iou`, :func:`average_precision`, :func:`mean_average_precision`,
  :func:`count_stats`; :class:`IouTracker` for unique-object counts.

The image type alias (HxWx3 uint8 RGB) is ``tenfold.vision.frames.Image``. Importing this
package loads numpy only; torch, cv2, av and onnxruntime load when a model
or a source first needs them.
"""

from tenfold.vision.classifiers import EfficientNetLite0, ImageNetClass, Prediction, imagenet_classes
from tenfold.vision.detectors import Detector, HaarBody, HogPerson, YoloPerson, letterbox, nms
from tenfold.vision.drive import CLASSES, FAMILIES, Crop, DriveConfig, DriveSource, DriveWorld, Family
from tenfold.vision.flops import PROFILES, DeviceProfile, FlopClock, count_flops
from tenfold.vision.folder import ImageFolderSource, read_image
from tenfold.vision.frames import Box, Frame, FrameSource, ScriptedSource, Truth, check_image, take
from tenfold.vision.metrics import (
    CountStats,
    average_precision,
    count_stats,
    iou,
    iou_matrix,
    mean_average_precision,
)
from tenfold.vision.models import MODELS, ModelSpec, load_classifier, load_detector
from tenfold.vision.panorama import AgentState, PanoramaConfig, PanoramaWorld
from tenfold.vision.ptz import PANS, TILTS, ZOOMS, Orientation, PanoramaSource, PTZRenderer, grid
from tenfold.vision.smallcnn import ClassifierTrainConfig, SmallCNN, train_classifier
from tenfold.vision.tracker import IouTracker, Track
from tenfold.vision.trained import (
    DetectorTrainConfig,
    SmallDetector,
    evaluate_detector,
    fit_detector,
    load_detector_weights,
    render_dataset,
    train_detector,
)
from tenfold.vision.video import CLIPS, ClipInfo, VideoSource, clip_path, packaged_clip
from tenfold.vision.worlds import WORLDS, WorldSpec, world_source

__all__ = [
    "CLASSES",
    "CLIPS",
    "FAMILIES",
    "MODELS",
    "PANS",
    "PROFILES",
    "TILTS",
    "WORLDS",
    "ZOOMS",
    "AgentState",
    "Box",
    "ClassifierTrainConfig",
    "ClipInfo",
    "CountStats",
    "Crop",
    "Detector",
    "DetectorTrainConfig",
    "DeviceProfile",
    "DriveConfig",
    "DriveSource",
    "DriveWorld",
    "EfficientNetLite0",
    "Family",
    "FlopClock",
    "Frame",
    "FrameSource",
    "HaarBody",
    "HogPerson",
    "ImageFolderSource",
    "ImageNetClass",
    "IouTracker",
    "ModelSpec",
    "Orientation",
    "PTZRenderer",
    "PanoramaConfig",
    "PanoramaSource",
    "PanoramaWorld",
    "Prediction",
    "ScriptedSource",
    "SmallCNN",
    "SmallDetector",
    "Track",
    "Truth",
    "VideoSource",
    "WorldSpec",
    "YoloPerson",
    "average_precision",
    "check_image",
    "clip_path",
    "count_flops",
    "count_stats",
    "evaluate_detector",
    "fit_detector",
    "grid",
    "imagenet_classes",
    "iou",
    "iou_matrix",
    "letterbox",
    "load_classifier",
    "load_detector",
    "load_detector_weights",
    "mean_average_precision",
    "nms",
    "packaged_clip",
    "read_image",
    "render_dataset",
    "take",
    "train_classifier",
    "train_detector",
    "world_source",
]
