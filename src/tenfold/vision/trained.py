"""A small CenterNet-style detector trained in-process on panorama renders.

No packaged model detects cars (or anything beyond people), so the project trains its own
on procedural views with exact ground truth (``specs/assets.md``, last section). Its name
says so: "small-detector (trained in-process)".

The network (Zhou et al., "Objects as Points", 2019, scaled down): a 4-stage strided conv
encoder to 1/16 resolution, a two-step upsampling decoder with skips back to 1/4, and three
heads at 1/4: a per-class centre heatmap (penalty-reduced focal loss on Gaussian targets),
log box size and sub-cell centre offset (L1 at object centres). Decoding keeps 3x3
local maxima of the heatmap above a threshold.

Training data: ``images`` views at random grid orientations and times of held-apart world
seeds. The weights are cached under ``cache_dir("vision", "trained")`` keyed by a hash of
the config, so a second call loads in milliseconds; a cache file that fails to load raises
AssetError naming it (no silent retraining).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tenfold.core.assets import atomic_path, cache_dir
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import AssetError, ConfigError

from .frames import Box, Image, check_image
from .metrics import average_precision, iou_matrix
from .panorama import PanoramaConfig, PanoramaWorld
from .ptz import PTZRenderer, grid

if TYPE_CHECKING:
    import torch

__all__ = [
    "DetectorTrainConfig",
    "SmallDetector",
    "evaluate_detector",
    "fit_detector",
    "load_detector_weights",
    "render_dataset",
    "train_detector",
]

TRAINER_VERSION = "3"


@dataclass(frozen=True)
class DetectorTrainConfig(Config):
    """What to train: input size, width, data and optimisation (the cache key)."""

    width: int = 192
    """Input width in pixels (views are rendered at this size)."""
    height: int = 108
    """Input height in pixels."""
    channels: tuple[int, int, int, int] = (16, 24, 32, 48)
    """Encoder widths at strides 2, 4, 8 and 16."""
    classes: tuple[str, ...] = ("person", "car")
    """Class names, in heatmap channel order."""
    world_seeds: tuple[int, ...] = (1001, 1002)
    """Worlds the training views come from (keep them apart from evaluation seeds)."""
    images: int = 512
    """Training views."""
    epochs: int = 10
    batch: int = 16
    lr: float = 4e-3
    seed: int = 0
    min_box_px: float = 3.0
    """Boxes shorter than this are not targets (they are below the 1/4 grid's resolution)."""
    skip_empty: float = 0.75
    """Probability of redrawing a training view that holds no target (see render_dataset)."""

    def __post_init__(self) -> None:
        check_range("width", self.width, 32, 1024)
        check_range("height", self.height, 32, 1024)
        if any(c < 1 for c in self.channels):
            raise ConfigError("channels", self.channels, "must all be >= 1")
        if not self.classes:
            raise ConfigError("classes", self.classes, "must name at least one class")
        if not self.world_seeds:
            raise ConfigError("world_seeds", self.world_seeds, "must hold at least one seed")
        check_range("images", self.images, 1)
        check_range("epochs", self.epochs, 1)
        check_range("batch", self.batch, 1)
        check_positive("lr", self.lr)
        check_range("min_box_px", self.min_box_px, 1.0)
        check_range("skip_empty", self.skip_empty, 0.0, 1.0)

    def key(self) -> str:
        blob = json.dumps({"v": TRAINER_VERSION, **self.to_dict()}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _net(cfg: DetectorTrainConfig) -> torch.nn.Module:
    import torch
    from torch import nn
    from torch.nn import functional as F

    def conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(*conv(cin, cout, stride), *conv(cout, cout, 1))

    c0, c1, c2, c3 = cfg.channels
    k = len(cfg.classes)

    class CenterNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # NOTE: the full-resolution stem is a single conv; it is where most FLOPs would go.
            self.s1, self.s2 = nn.Sequential(*conv(3, c0, 2)), block(c0, c1, 2)
            self.s3, self.s4 = block(c1, c2, 2), block(c2, c3, 2)
            self.u3 = nn.Sequential(nn.Conv2d(c3 + c2, c2, 3, 1, 1), nn.ReLU(inplace=True))
            self.u2 = nn.Sequential(nn.Conv2d(c2 + c1, c1, 1), nn.ReLU(inplace=True), *conv(c1, c1, 1))
            self.heat = nn.Conv2d(c1, k, 1)
            assert self.heat.bias is not None
            nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1, as in CenterNet
            self.reg = nn.Conv2d(c1, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, H, W) in 0..1
            f2 = self.s2(self.s1(x))  # (B, c1, H/4, W/4)
            f3 = self.s3(f2)  # (B, c2, H/8, W/8)
            f4 = self.s4(f3)  # (B, c3, H/16, W/16)
            d3 = self.u3(torch.cat([F.interpolate(f4, size=f3.shape[2:]), f3], 1))
            d2 = self.u2(torch.cat([F.interpolate(d3, size=f2.shape[2:]), f2], 1))  # (B, c1, H/4, W/4)
            return torch.cat([self.heat(d2), self.reg(d2)], 1)  # (B, K + 4, H/4, W/4)

    return CenterNet()


def _out_size(n: int) -> int:
    return (n + 1) // 2 if n else 0


def _targets(boxes: Sequence[Box], cfg: DetectorTrainConfig, oh: int, ow: int) -> tuple[np.ndarray, ...]:
    """Gaussian heatmaps (K, oh, ow), regression targets (4, oh, ow) and their mask (oh, ow)."""
    k = len(cfg.classes)
    heat = np.zeros((k, oh, ow), np.float32)
    reg = np.zeros((4, oh, ow), np.float32)
    mask = np.zeros((oh, ow), np.float32)
    sx, sy = ow / cfg.width, oh / cfg.height
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
    for b in sorted(boxes, key=lambda b: -b.area):
        if b.label not in cfg.classes or b.height < cfg.min_box_px:
            continue
        c = cfg.classes.index(b.label)
        cx, cy = (b.x1 + b.x2) / 2 * sx, (b.y1 + b.y2) / 2 * sy
        ix, iy = min(int(cx), ow - 1), min(int(cy), oh - 1)
        w, h = max(b.width * sx, 0.25), max(b.height * sy, 0.25)
        sig_x, sig_y = max(w / 6, 0.5), max(h / 6, 0.5)
        g = np.exp(-((xx - ix) ** 2) / (2 * sig_x**2) - ((yy - iy) ** 2) / (2 * sig_y**2))
        heat[c] = np.maximum(heat[c], g)
        reg[:, iy, ix] = (np.log(w), np.log(h), cx - ix, cy - iy)
        mask[iy, ix] = 1.0
    return heat, reg, mask


def render_dataset(cfg: DetectorTrainConfig, images: int, world_seeds: Sequence[int], seed: int,
                   panorama: PanoramaConfig | None = None, *,
                   skip_empty: float = 0.0) -> tuple[list[Image], list[list[Box]]]:
    """``images`` views at random grid orientations and frames of the given worlds.

    ``skip_empty`` is the probability of redrawing (up to 4 times) a view with no box of at
    least ``cfg.min_box_px``; training uses it to spend fewer steps on empty sky, evaluation
    samples the grid uniformly (0).
    """
    rng = np.random.default_rng(seed)
    worlds = [PanoramaWorld(panorama, s) for s in world_seeds]
    renderers = [PTZRenderer(w, cfg.width, cfg.height) for w in worlds]
    orientations = grid()
    xs: list[Image] = []
    ys: list[list[Box]] = []
    for i in range(images):
        r = renderers[i % len(renderers)]
        for _ in range(5):
            o = orientations[int(rng.integers(len(orientations)))]
            frame = r.render(o, int(rng.integers(r.world.n_frames)))
            useful = frame.truth is not None and any(b.height >= cfg.min_box_px for b in frame.truth.boxes)
            if useful or float(rng.random()) >= skip_empty:
                break
        xs.append(frame.image)
        ys.append(list(frame.truth.boxes) if frame.truth else [])
    return xs, ys


def _focal(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    import torch

    p = pred.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p**2 * (1 - gt) ** 4 * neg
    n = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / n


class SmallDetector:
    """A trained CenterNet-style detector; :meth:`detect` follows the Detector protocol."""

    def __init__(self, config: DetectorTrainConfig, model: torch.nn.Module, *, score_threshold: float = 0.3) -> None:
        check_range("score_threshold", score_threshold, 0.0, 1.0)
        self.config = config
        self.model = model.eval()
        self.score_threshold = score_threshold
        self.name = f"small-detector-{config.width}x{config.height} (trained in-process)"

    def _tensor(self, images: Sequence[Image]) -> torch.Tensor:
        import cv2
        import torch

        batch = []
        for raw in images:
            im = check_image(np.asarray(raw))
            if im.shape[:2] != (self.config.height, self.config.width):
                size = (self.config.width, self.config.height)
                im = np.asarray(cv2.resize(im, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
            batch.append(im.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(batch).astype(np.float32) / 255.0)

    def detect(self, image: Image) -> list[Box]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[Image], max_det: int = 64,
                     score_threshold: float | None = None) -> list[list[Box]]:
        """Detections per image; ``score_threshold`` overrides the detector's own."""
        import torch
        from torch.nn import functional as F

        k = len(self.config.classes)
        threshold = self.score_threshold if score_threshold is None else score_threshold
        with torch.inference_mode():
            out = self.model(self._tensor(images))  # (B, K + 4, oh, ow)
            heat = out[:, :k].sigmoid()
            peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
        results: list[list[Box]] = []
        for b, im in enumerate(images):
            h_img, w_img = np.asarray(im).shape[:2]
            oh, ow = heat.shape[2:]
            sx, sy = w_img / ow, h_img / oh
            flat = peaks[b].reshape(-1)
            scores, idx = flat.topk(min(max_det, flat.numel()))
            boxes: list[Box] = []
            reg = out[b, k:].numpy()
            for s, i in zip(scores.tolist(), idx.tolist(), strict=True):
                if s < threshold:
                    break
                c, rem = divmod(i, oh * ow)
                iy, ix = divmod(rem, ow)
                lw, lh, ox, oy = reg[:, iy, ix]
                w, h = float(np.exp(lw)), float(np.exp(lh))
                cx, cy = ix + float(ox), iy + float(oy)
                boxes.append(Box((cx - w / 2) * sx, (cy - h / 2) * sy, (cx + w / 2) * sx, (cy + h / 2) * sy,
                                 self.config.classes[c], s).clipped(w_img, h_img))
            results.append(boxes)
        return results


def _training_tensors(cfg: DetectorTrainConfig, xs: Sequence[Image],
                      ys: Sequence[Sequence[Box]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (N, 3, H, W) in [0, 1] and their CenterNet targets: heatmaps, box regressions, masks."""
    import torch

    oh, ow = _out_size(_out_size(cfg.height)), _out_size(_out_size(cfg.width))
    targets = [_targets(b, cfg, oh, ow) for b in ys]
    x = torch.from_numpy(np.stack([im.transpose(2, 0, 1) for im in xs]).astype(np.float32) / 255.0)
    heat = torch.from_numpy(np.stack([t[0] for t in targets]))
    reg = torch.from_numpy(np.stack([t[1] for t in targets]))
    mask = torch.from_numpy(np.stack([t[2] for t in targets]))
    return x, heat, reg, mask


def _detection_loss(out: torch.Tensor, heat: torch.Tensor, reg: torch.Tensor, mask: torch.Tensor,
                    k: int) -> torch.Tensor:
    """Focal loss on the K heatmaps plus L1 on the 4 box channels (summed) at object centres."""
    m = mask.unsqueeze(1)  # (B, 1, oh, ow)
    l_reg = ((out[:, k:] - reg).abs() * m).sum() / m.sum().clamp(min=1.0)
    return _focal(out[:, :k], heat) + l_reg


def _fit(cfg: DetectorTrainConfig, progress: Callable[[str], None] | None) -> torch.nn.Module:
    import torch

    xs, ys = render_dataset(cfg, cfg.images, cfg.world_seeds, cfg.seed, skip_empty=cfg.skip_empty)
    x, heat, reg, mask = _training_tensors(cfg, xs, ys)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = _net(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        steps = cfg.epochs * ((len(xs) + cfg.batch - 1) // cfg.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
        gen = torch.Generator().manual_seed(cfg.seed)
        k = len(cfg.classes)
        model.train()
        for epoch in range(cfg.epochs):
            order = torch.randperm(len(xs), generator=gen)
            total = 0.0
            for start in range(0, len(xs), cfg.batch):
                bi = order[start : start + cfg.batch]
                xb = x[bi]
                if torch.rand(1, generator=gen).item() < 0.5:  # photometric jitter
                    xb = (xb * (0.8 + 0.4 * torch.rand(1, generator=gen))).clamp(0, 1)
                loss = _detection_loss(model(xb), heat[bi], reg[bi], mask[bi], k)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(bi)
            if progress is not None:
                progress(f"epoch {epoch + 1}/{cfg.epochs}: loss {total / len(xs):.3f}")
    return model.eval()


def fit_detector(config: DetectorTrainConfig, images: Sequence[Image], boxes: Sequence[Sequence[Box]], *,
                 init: SmallDetector | None = None, heads_only: bool = False, epochs: int | None = None,
                 lr: float | None = None, batch: int | None = None, one_cycle: bool = True,
                 seed: int | None = None, threads: int = 1) -> SmallDetector:
    """Train on the given images and boxes (any labels: truth, or another model's detections).

    Knowledge distillation and continual fine-tuning need this: a student fitted to a
    teacher's boxes rather than to renderer truth. Images of another size are resized to the
    config's and their boxes scaled. ``init`` starts from a copy of that detector's weights
    (never modified); ``heads_only`` freezes everything except the heatmap and box heads.
    ``epochs``, ``lr`` and ``batch`` default to the config's; ``one_cycle=False`` keeps the
    learning rate constant (AdamW either way). Deterministic for a given ``seed``.
    """
    import copy

    import cv2
    import torch

    if len(images) != len(boxes) or not images:
        raise ConfigError("boxes", len(boxes), f"must be non-empty and match the {len(images)} images")
    cfg = config
    n_epochs = cfg.epochs if epochs is None else epochs
    n_batch = cfg.batch if batch is None else batch
    rate = cfg.lr if lr is None else lr
    check_range("epochs", n_epochs, 1)
    check_range("batch", n_batch, 1)
    check_positive("lr", rate)
    run_seed = cfg.seed if seed is None else seed
    xs: list[Image] = []
    ys: list[list[Box]] = []
    for raw, bs in zip(images, boxes, strict=True):
        im = check_image(np.asarray(raw))
        h, w = im.shape[:2]
        if (w, h) != (cfg.width, cfg.height):
            im = np.asarray(cv2.resize(im, (cfg.width, cfg.height), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        xs.append(im)
        ys.append([b.scaled(cfg.width / w, cfg.height / h) for b in bs])
    x, heat, reg, mask = _training_tensors(cfg, xs, ys)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(run_seed)
            model = copy.deepcopy(init.model) if init is not None else _net(cfg)
            if heads_only:
                for name, p in model.named_parameters():
                    p.requires_grad_(name.startswith(("heat.", "reg.")))
            params = [p for p in model.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=rate, weight_decay=1e-4)
            steps = n_epochs * ((len(xs) + n_batch - 1) // n_batch)
            sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=rate, total_steps=steps, pct_start=0.15)
                     if one_cycle else None)
            gen = torch.Generator().manual_seed(run_seed)
            k = len(cfg.classes)
            # NOTE: with a frozen backbone, batch-norm statistics stay frozen too (eval mode).
            if heads_only:
                model.eval()
            else:
                model.train()
            for _ in range(n_epochs):
                order = torch.randperm(len(xs), generator=gen)
                for start in range(0, len(xs), n_batch):
                    bi = order[start : start + n_batch]
                    loss = _detection_loss(model(x[bi]), heat[bi], reg[bi], mask[bi], k)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
            for p in model.parameters():
                p.requires_grad_(True)
    finally:
        torch.set_num_threads(previous)
    threshold = init.score_threshold if init is not None else 0.3
    return SmallDetector(cfg, model.eval(), score_threshold=threshold)


def train_detector(config: DetectorTrainConfig | None = None, *, cache: bool = True,
                   progress: Callable[[str], None] | None = None, threads: int = 1) -> SmallDetector:
    """Train (or load from the cache) the small detector described by ``config``."""
    import torch

    cfg = config or DetectorTrainConfig()
    path = cache_dir("vision", "trained") / f"small-detector-{cfg.key()}.pt"
    if cache and path.exists():
        return SmallDetector(cfg, _load(cfg, path))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = _fit(cfg, progress)
    finally:
        torch.set_num_threads(previous)
    if cache:
        with atomic_path(path) as tmp:
            torch.save({"config": cfg.to_dict(), "state": model.state_dict()}, tmp)
    return SmallDetector(cfg, model)


def load_detector_weights(config: DetectorTrainConfig, path: Path) -> SmallDetector:
    """A detector from a ``{"config", "state"}`` file as :func:`train_detector` writes it.

    A file that fails to load raises AssetError naming it (no silent retraining).
    """
    return SmallDetector(config, _load(config, path))


def _load(cfg: DetectorTrainConfig, path: Path) -> torch.nn.Module:
    import torch

    try:
        blob: Any = torch.load(path, map_location="cpu", weights_only=True)
        model = _net(cfg)
        model.load_state_dict(blob["state"])
    except Exception as exc:
        raise AssetError(
            f"trained-model cache {path} is corrupt ({type(exc).__name__}: {exc}); delete it to retrain"
        ) from None
    return model.eval()


def evaluate_detector(detector: SmallDetector, *, world_seeds: Sequence[int] = (0,), images: int = 200,
                      seed: int = 123, min_height: float = 8.0, score_threshold: float = 0.05) -> dict[str, float]:
    """AP@0.5 per class and their mean on fresh renders of ``world_seeds`` (held out).

    Truth boxes shorter than ``min_height`` px are *ignored* (COCO-style): a detection that
    matches only such a box is neither a hit nor a false positive, and missing it costs
    nothing. Far agents a few pixels tall are what zoom exists for; they do not count here.
    Detections down to ``score_threshold`` are ranked (AP needs the low-score tail).
    """
    check_range("min_height", min_height, 0.0)
    xs, ys = render_dataset(detector.config, images, world_seeds, seed)
    dets = detector.detect_batch(xs, score_threshold=score_threshold)
    kept_truth: list[list[Box]] = []
    kept_dets: list[list[Box]] = []
    for truth, found in zip(ys, dets, strict=True):
        keep = [b for b in truth if b.height >= min_height]
        ignore = [b for b in truth if b.height < min_height]
        hit_keep = iou_matrix(found, keep).max(axis=1) if keep and found else np.zeros(len(found))
        hit_ignore = iou_matrix(found, ignore).max(axis=1) if ignore and found else np.zeros(len(found))
        kept_dets.append([d for d, a, b in zip(found, hit_keep, hit_ignore, strict=True) if a >= 0.5 or b < 0.5])
        kept_truth.append(keep)
    out = {c: average_precision(kept_dets, kept_truth, c) for c in detector.config.classes}
    valid = [v for v in out.values() if not np.isnan(v)]
    out["mAP"] = float(np.mean(valid)) if valid else float("nan")
    return out
