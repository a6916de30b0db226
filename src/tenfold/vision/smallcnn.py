"""Small CNN classifiers trained in-process (for object crops), with embeddings exposed.

A four-stage conv net (conv-BN-ReLU, stride 2 per stage), global average pooling, a linear
projection to an ``embedding``-dimensional feature (the layer continual-learning systems
read) and a linear classifier. About 0.1-0.5M parameters with the defaults, in the range the
legilimens students use.

:func:`train_classifier` fits one on labelled crops (AdamW, cross-entropy, flip
augmentation) and caches the weights under ``cache_dir("vision", "trained")`` keyed by the
config and a hash of the training data; its name says "trained in-process".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tenfold.core.assets import atomic_path, cache_dir
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import AssetError, ConfigError

from .frames import Image, check_image

if TYPE_CHECKING:
    import torch

__all__ = ["ClassifierTrainConfig", "SmallCNN", "train_classifier"]


@dataclass(frozen=True)
class ClassifierTrainConfig(Config):
    """Architecture and optimisation of a small crop classifier (part of the cache key)."""

    size: int = 32
    """Input crops are resized to size x size; 16..256."""
    classes: tuple[str, ...] = ("car", "truck", "bus", "person", "cyclist", "sign")
    channels: tuple[int, int, int, int] = (24, 48, 96, 128)
    embedding: int = 128
    """Width of the embedding layer."""
    epochs: int = 10
    batch: int = 32
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("size", self.size, 16, 256)
        if len(self.classes) < 2:
            raise ConfigError("classes", self.classes, "must name at least two classes")
        if any(c < 1 for c in self.channels):
            raise ConfigError("channels", self.channels, "must all be >= 1")
        check_range("embedding", self.embedding, 2)
        check_range("epochs", self.epochs, 1)
        check_range("batch", self.batch, 1)
        check_positive("lr", self.lr)


def _build(cfg: ClassifierTrainConfig) -> torch.nn.Module:
    from torch import nn

    layers: list[nn.Module] = []
    cin = 3
    for c in cfg.channels:
        layers += [nn.Conv2d(cin, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        cin = c
    return nn.ModuleDict({
        "trunk": nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        "embed": nn.Sequential(nn.Linear(cin, cfg.embedding), nn.ReLU(inplace=True)),
        "head": nn.Linear(cfg.embedding, len(cfg.classes)),
    })


class SmallCNN:
    """A small trained crop classifier: ``predict``, ``probs`` and ``embed`` on RGB crops."""

    def __init__(self, config: ClassifierTrainConfig, net: torch.nn.Module | None = None) -> None:
        import torch

        self.config = config
        if net is None:
            with torch.random.fork_rng():
                torch.manual_seed(config.seed)
                net = _build(config)
        self.net: Any = net.eval()
        self.name = f"small-cnn-{config.size}px (trained in-process)"

    def tensor(self, images: Sequence[Image]) -> torch.Tensor:
        """(N, 3, size, size) float32 in 0..1."""
        import cv2
        import torch

        if not images:
            raise ConfigError("images", "[]", "must hold at least one image")
        s = self.config.size
        batch = []
        for i, raw in enumerate(images):
            im = check_image(np.asarray(raw), f"crop {i}")
            if im.shape[:2] != (s, s):
                im = np.asarray(cv2.resize(im, (s, s), interpolation=cv2.INTER_AREA), dtype=np.uint8)
            batch.append(im.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(batch).astype(np.float32) / 255.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, C), embeddings (N, E)) for a batch tensor."""
        emb = self.net["embed"](self.net["trunk"](x))  # (N, E)
        return self.net["head"](emb), emb

    def probs(self, images: Sequence[Image]) -> npt.NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            logits, _ = self.forward(self.tensor(images))
            return np.asarray(logits.softmax(-1).numpy(), dtype=np.float32)

    def embed(self, images: Sequence[Image]) -> npt.NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            _, emb = self.forward(self.tensor(images))
            return np.asarray(emb.numpy(), dtype=np.float32)

    def predict(self, images: Sequence[Image]) -> list[str]:
        return [self.config.classes[int(i)] for i in self.probs(images).argmax(axis=1)]

    def accuracy(self, images: Sequence[Image], labels: Sequence[str]) -> float:
        pred = self.predict(images)
        return float(np.mean([p == y for p, y in zip(pred, labels, strict=True)]))


def _data_key(cfg: ClassifierTrainConfig, images: Sequence[Image], labels: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for im, y in zip(images, labels, strict=True):
        h.update(np.ascontiguousarray(im).tobytes())
        h.update(y.encode())
    return h.hexdigest()[:16]


def train_classifier(images: Sequence[Image], labels: Sequence[str], config: ClassifierTrainConfig | None = None,
                     *, cache: bool = True, threads: int = 1) -> SmallCNN:
    """Fit a :class:`SmallCNN` on labelled crops, or load the identical run from the cache."""
    import torch
    from torch.nn import functional as F

    cfg = config or ClassifierTrainConfig()
    if len(images) != len(labels) or not images:
        raise ConfigError("labels", len(labels), f"must be non-empty and match the {len(images)} images")
    unknown = sorted(set(labels) - set(cfg.classes))
    if unknown:
        raise ConfigError("labels", unknown, f"must be among the classes {', '.join(cfg.classes)}")
    path = cache_dir("vision", "trained") / f"small-cnn-{_data_key(cfg, images, labels)}.pt"
    model = SmallCNN(cfg)
    if cache and path.exists():
        try:
            model.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:
            raise AssetError(
                f"trained-model cache {path} is corrupt ({type(exc).__name__}); delete it to retrain"
            ) from None
        return model
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = model.tensor(images)
        y = torch.tensor([cfg.classes.index(v) for v in labels])
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            gen = torch.Generator().manual_seed(cfg.seed)
            opt = torch.optim.AdamW(model.net.parameters(), lr=cfg.lr, weight_decay=1e-4)
            model.net.train()
            for _ in range(cfg.epochs):
                order = torch.randperm(len(x), generator=gen)
                for start in range(0, len(x), cfg.batch):
                    bi = order[start : start + cfg.batch]
                    xb = x[bi]
                    if torch.rand(1, generator=gen).item() < 0.5:
                        xb = xb.flip(3)
                    logits, _ = model.forward(xb)
                    loss = F.cross_entropy(logits, y[bi])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            model.net.eval()
    finally:
        torch.set_num_threads(previous)
    if cache:
        with atomic_path(path) as tmp:
            torch.save(model.net.state_dict(), tmp)
    return model
