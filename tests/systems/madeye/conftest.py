"""A tiny, fast MadEye world for the tests: a small backend trained in seconds, short streams.

The backend here is a deliberately small CenterNet (96x54, 160 renders, 4 epochs) so the
whole suite needs no cached project backends; everything derived lands in a temporary
``TENFOLD_CACHE_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenfold.systems.madeye import (
    BackendSpec,
    MadEyeConfig,
    Query,
    Scenario,
    SimConfig,
    SimPanorama,
    SmallDetectorBackend,
    Workload,
    prepare,
)

TINY_SPEC = BackendSpec("tiny", 96, 54, (8, 12, 16, 24), "ssd", images=160, epochs=4)
TINY_SIM = SimConfig(eval_steps=20, approx_images=96, approx_epochs=3, anchor_stride=4)


@dataclass
class Tiny:
    backend: SmallDetectorBackend
    source: SimPanorama

    def scenario(self, workload: Workload, **cfg: object) -> Scenario:
        return prepare(
            self.source,
            workload,
            sim=TINY_SIM,
            config=MadEyeConfig(**cfg),  # type: ignore[arg-type]
            backends={"tiny": self.backend},
        )


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiny]:
    import torch

    from tenfold.vision.trained import train_detector

    old = os.environ.get("TENFOLD_CACHE_DIR")
    os.environ["TENFOLD_CACHE_DIR"] = str(tmp_path_factory.mktemp("madeye-cache"))
    torch.set_num_threads(1)
    try:
        backend = SmallDetectorBackend(TINY_SPEC, train_detector(TINY_SPEC.train_config()))
        backend.detector.score_threshold = 0.25
        yield Tiny(backend, SimPanorama(3))
    finally:
        if old is None:
            os.environ.pop("TENFOLD_CACHE_DIR", None)
        else:
            os.environ["TENFOLD_CACHE_DIR"] = old


def workload(*specs: str) -> Workload:
    """Queries as OBJECT:TASK on the tiny backend."""
    return Workload("t", tuple(Query("tiny", s.split(":")[1], s.split(":")[0]) for s in specs))


def write_pano(path: Path, frames: int = 3) -> Path:
    """A 256x128 (2:1) mpeg4 video of ``frames`` frames; azimuth 180..360 is bright."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 256, 128, "yuv420p"
        for i in range(frames):
            img = np.zeros((128, 256, 3), np.uint8)
            img[:, 128:] = 200
            img[:, :, 1] = (i * 10) % 250
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
