"""MadEye (Wong et al., NSDI'24; arXiv:2304.02101): adaptive PTZ orientation for live video
analytics.

Spec: shared/specs/madeye.md. The camera (:mod:`.camera`) visits a shape of at most K
contiguous orientations (:mod:`.search`, the core algorithm), ranks the views with
approximation models distilled from the server's backends (:mod:`.approx`,
:mod:`.ranking`) and sends the top N; the server (:mod:`.server`) runs the backends
(:mod:`.backends`) on the sent frames and keeps distilling. :mod:`.evaluate` scores
workloads (:mod:`.workload`) against the backend reference; :mod:`.baselines` holds the
compared arms; sources (:mod:`.sources`) are the simulated panorama, 360-degree videos,
digital PTZ and ONVIF cameras. Torch loads only when a model is built.
"""

from tenfold.systems.madeye.approx import ApproxModel, ViewModel, distill_approx
from tenfold.systems.madeye.backends import (
    PROJECT_BACKENDS,
    UPSTREAM_WEIGHTS,
    Backend,
    BackendSpec,
    HaarBody,
    HogPerson,
    SmallDetectorBackend,
    TorchvisionDetector,
    YoloPersonOnnx,
    load_backend,
    query_weight,
)
from tenfold.systems.madeye.baselines import (
    BestDynamic,
    BestFixed,
    EpsilonGreedyMAB,
    MadEyePolicy,
    Panoptes,
    PTZTracking,
)
from tenfold.systems.madeye.camera import MadEyeCamera
from tenfold.systems.madeye.config import AccuracyBenchConfig, MadEyeConfig, SimConfig
from tenfold.systems.madeye.evaluate import (
    Accuracy,
    Episode,
    EvalResult,
    Policy,
    PolicyRun,
    ReferenceStore,
    Scenario,
    WorkloadScorer,
    evaluate,
    prepare,
    spearman,
)
from tenfold.systems.madeye.live import run_live
from tenfold.systems.madeye.orientation import Orientation, OrientationError, OrientationGrid, Region
from tenfold.systems.madeye.ranking import rank, ranking_scores
from tenfold.systems.madeye.search import ShapeSearch, ShapeUpdate, swap_threshold, viability
from tenfold.systems.madeye.server import MadEyeServer, SentFrame, StepResult
from tenfold.systems.madeye.sources import (
    Equirect360Video,
    OnvifPTZ,
    PTZSource,
    SimPanorama,
    SourceError,
    VirtualPTZ,
)
from tenfold.systems.madeye.tracker import PanoramaTracker, angle_boxes, dedup
from tenfold.systems.madeye.workload import OBJECTS, TASKS, WORKLOADS, Query, Workload, parse_query

__all__ = [
    "OBJECTS",
    "PROJECT_BACKENDS",
    "TASKS",
    "UPSTREAM_WEIGHTS",
    "WORKLOADS",
    "Accuracy",
    "AccuracyBenchConfig",
    "ApproxModel",
    "Backend",
    "BackendSpec",
    "BestDynamic",
    "BestFixed",
    "Episode",
    "EpsilonGreedyMAB",
    "Equirect360Video",
    "EvalResult",
    "HaarBody",
    "HogPerson",
    "MadEyeCamera",
    "MadEyeConfig",
    "MadEyePolicy",
    "MadEyeServer",
    "OnvifPTZ",
    "Orientation",
    "OrientationError",
    "OrientationGrid",
    "PTZSource",
    "PTZTracking",
    "Panoptes",
    "PanoramaTracker",
    "Policy",
    "PolicyRun",
    "Query",
    "ReferenceStore",
    "Region",
    "Scenario",
    "SentFrame",
    "ShapeSearch",
    "ShapeUpdate",
    "SimConfig",
    "SimPanorama",
    "SmallDetectorBackend",
    "SourceError",
    "StepResult",
    "TorchvisionDetector",
    "ViewModel",
    "VirtualPTZ",
    "Workload",
    "WorkloadScorer",
    "YoloPersonOnnx",
    "angle_boxes",
    "dedup",
    "distill_approx",
    "evaluate",
    "load_backend",
    "parse_query",
    "prepare",
    "query_weight",
    "rank",
    "ranking_scores",
    "run_live",
    "spearman",
    "swap_threshold",
    "viability",
]
