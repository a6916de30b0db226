"""``tenfold vision ...`` verbs: ``show``, ``detect``, ``models``.

Registered in :data:`tenfold.core.registry.COMMANDS` at import time; heavy imports (cv2,
torch, av, onnxruntime) happen inside the verbs, so ``tenfold --help`` stays fast.

- ``tenfold vision show --world panorama --pan 0 --zoom 2 --seed 1 --frame 300 --out view.png``
  writes one rendered view with its ground-truth boxes drawn (people red, cars green; the
  drive world ignores pan/tilt/zoom and colours by class).
- ``tenfold vision detect VIDEO --detector yolo-person|hog|...`` prints one line per frame:
  ``frame<TAB>t<TAB>count`` (``--json`` prints JSON lines with the boxes).
- ``tenfold vision models``: the registered model names.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.errors import ConfigError

from .frames import Box, Image
from .models import MODELS
from .worlds import WORLDS

__all__: list[str] = []

_COLOURS = {"person": (255, 40, 40), "car": (40, 220, 40), "truck": (40, 120, 255), "bus": (255, 200, 0),
            "cyclist": (255, 0, 255), "sign": (0, 255, 255)}


def draw_boxes(image: Image, boxes: tuple[Box, ...] | list[Box], scale: int = 1) -> Image:
    import cv2

    out: Image = image.copy()
    if scale > 1:
        out = np.asarray(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    for b in boxes:
        p1 = (round(b.x1 * scale), round(b.y1 * scale))
        p2 = (round(b.x2 * scale), round(b.y2 * scale))
        cv2.rectangle(out, p1, p2, _COLOURS.get(b.label, (255, 255, 255)), 1)
    return out


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _check_out(out: Path) -> Path:
    """``--out`` must name an image file OpenCV can write in a directory that exists or can be made."""
    if out.suffix.lower() not in _IMAGE_SUFFIXES:
        raise ConfigError("--out", str(out), f"must end in an image suffix ({', '.join(_IMAGE_SUFFIXES)})")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("--out", str(out), f"its directory cannot be created: {exc.strerror or exc}") from None
    if out.is_dir() or not os.access(out.parent, os.W_OK):
        raise ConfigError("--out", str(out), "must be a writable file path")
    return out


def _cmd_show(args: argparse.Namespace) -> int:
    import cv2

    from .drive import DriveWorld
    from .panorama import PanoramaWorld
    from .ptz import Orientation, PTZRenderer

    WORLDS.get(args.world)
    if args.scale < 1 or args.scale > 8:
        raise ConfigError("scale", args.scale, "must be in [1, 8]")
    if args.seed < 0:
        raise ConfigError("--seed", args.seed, "must be >= 0")
    out = _check_out(Path(args.out))  # before rendering: a bad path fails fast
    if args.world == "panorama":
        orientation = Orientation(args.pan, args.tilt, args.zoom)
        renderer = PTZRenderer(PanoramaWorld(seed=args.seed), args.width, args.height)
        frame = renderer.render(orientation, args.frame)
    else:
        frame = DriveWorld(seed=args.seed).render(args.frame)
    boxes = frame.truth.boxes if frame.truth else ()
    image = draw_boxes(frame.image, boxes, args.scale) if not args.no_boxes else frame.image
    try:
        written = cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    except cv2.error:
        written = False
    if not written:
        raise ConfigError("--out", str(out), "must be a writable path ending in an image suffix (.png, .jpg)")
    counts: dict[str, int] = {}
    for b in boxes:
        counts[b.label] = counts.get(b.label, 0) + 1
    summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no objects"
    print(f"{out}: {args.world} seed {args.seed} frame {args.frame}: {summary}")
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from .models import load_detector
    from .video import VideoSource

    if args.stride < 1:  # bad usage (exit 2) before loading anything
        raise ConfigError("--stride", args.stride, "must be >= 1")
    stride = args.stride
    detector = load_detector(args.detector)
    source = VideoSource(args.video, max_frames=args.max_frames)
    for frame in source:
        if frame.index % stride:
            continue
        boxes = [b for b in detector.detect(frame.image) if b.score >= args.min_score]
        if args.json:
            print(json.dumps({"frame": frame.index, "t": round(frame.t, 4), "count": len(boxes),
                              "boxes": [[round(v, 1) for v in b.as_tuple()] + [round(b.score, 3)] for b in boxes]}))
        else:
            print(f"{frame.index}\t{frame.t:.3f}\t{len(boxes)}")
        sys.stdout.flush()
    return 0


def _cmd_models(_args: argparse.Namespace) -> int:
    for name, spec in MODELS.items():
        print(f"{name}\t{spec.kind}\t{spec.description}")
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="vision_command", metavar="VERB")
    show = sub.add_parser("show", help="render a world view with its ground-truth boxes to an image")
    show.add_argument("--world", default="panorama", help=f"one of: {', '.join(WORLDS.names())}")
    show.add_argument("--pan", type=int, default=0, help="pan degrees, 0..330 step 30")
    show.add_argument("--tilt", type=int, default=0, help="tilt degrees, -30..30 step 15")
    show.add_argument("--zoom", type=int, default=1, help="zoom 1, 2 or 3")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--frame", type=int, default=0, help="frame index (30 fps)")
    show.add_argument("--width", type=int, default=192)
    show.add_argument("--height", type=int, default=108)
    show.add_argument("--scale", type=int, default=1, help="integer upscaling of the written image")
    show.add_argument("--no-boxes", action="store_true", help="write the view without boxes")
    show.add_argument("--out", default="view.png")
    show.set_defaults(func=_cmd_show)
    detect = sub.add_parser("detect", help="run a detector over a video and print per-frame counts")
    detect.add_argument("video", help="a video file or URL PyAV can open")
    detect.add_argument("--detector", default="yolo-person",
                        help=f"one of: {', '.join(n for n, s in MODELS.items() if s.kind == 'detector')}")
    detect.add_argument("--max-frames", type=int, default=None)
    detect.add_argument("--stride", type=int, default=1, help="run on every k-th frame")
    detect.add_argument("--min-score", type=float, default=float("-inf"), help="drop boxes scoring below this")
    detect.add_argument("--json", action="store_true", help="JSON lines with boxes")
    detect.set_defaults(func=_cmd_detect)
    models = sub.add_parser("models", help="list the registered vision models")
    models.set_defaults(func=_cmd_models)


COMMANDS.add("vision", CommandGroup(name="vision", help="video sources, procedural worlds, detectors and classifiers",
                                    configure=_configure, kind="layer"))
