"""A tiny trainable decoder-only LM (nanoGPT-sized), its trainer, checkpoints and backend.

Systems train task-specific model pairs with it (specreason's draft/base pair on arithmetic
chains, for instance), then run them through :class:`TinyGPTBackend`, which is a full
:class:`~tenfold.llm.LLMBackend` with KV caching and prefix reuse. Everything is seeded:
the same :class:`GPTConfig`, :class:`TrainConfig` and data give the same weights.

Tokenizer choice: :class:`CharTokenizer`, one token per character seen in the training text
plus ``<eos>`` and ``<unk>``. It needs no training, round-trips its alphabet exactly, and
is small enough (tens of symbols) for tiny models; the cost is longer sequences than BPE.
Any object with the same five members (``encode``, ``decode``, ``token_text``,
``vocab_size``, ``eos_id``) can replace it, e.g. a system's own BPE.

The model is the usual pre-LayerNorm transformer: token and position embeddings, ``n_layer``
blocks of causal self-attention and a GELU MLP, a final LayerNorm and a head tied to the
token embedding. Written for this project from the architecture's description.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from tenfold.core.api import api
from tenfold.core.assets import atomic_path
from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import AssetError, BackendError, ConfigError

from .backend import Generation, Message, NextToken, SamplingParams, check_messages
from .decoding import DecodeStream, PrefixKVCache, next_token

__all__ = [
    "CharTokenizer",
    "GPTConfig",
    "TinyGPT",
    "TinyGPTBackend",
    "Tokenizer",
    "TrainConfig",
    "load_checkpoint",
    "save_checkpoint",
    "train_tiny_gpt",
]

KV = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, keys and values ``(1, n_head, T, head_dim)``."""


@dataclass(frozen=True)
class GPTConfig(Config):
    """Shape of a TinyGPT."""

    vocab_size: int = 64
    """Number of token ids (the tokenizer's ``vocab_size``)."""
    block_size: int = 256
    """Context window in tokens (learned position embeddings)."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads; must divide ``n_embd``."""
    n_embd: int = 128
    """Embedding width."""
    dropout: float = 0.0
    """Dropout during training, in [0, 1)."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_positive(name, getattr(self, name))
        check_range("dropout", self.dropout, lo=0.0, hi=1.0, hi_open=True)
        if self.n_embd % self.n_head:
            raise ConfigError("n_head", self.n_head, f"must divide n_embd = {self.n_embd}")


@dataclass(frozen=True)
class TrainConfig(Config):
    """A seeded training run."""

    steps: int = 200
    """Optimizer steps."""
    batch_size: int = 16
    """Sequences per step."""
    seq_len: int = 128
    """Tokens per training sequence (at most the model's block_size)."""
    lr: float = 3e-3
    """AdamW peak learning rate (cosine decay to 10%)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    seed: int = 0
    """Seeds initialisation and batch sampling."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "lr"):
            check_positive(name, getattr(self, name))
        check_range("weight_decay", self.weight_decay, lo=0.0)


class Tokenizer(Protocol):
    """What TinyGPTBackend needs from a tokenizer."""

    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_text(self, token_id: int) -> str: ...


class CharTokenizer:
    """One id per character: 0 is ``<eos>``, 1 is ``<unk>``, then the alphabet in sorted order."""

    EOS, UNK = "<eos>", "<unk>"

    def __init__(self, alphabet: str) -> None:
        chars = sorted(set(alphabet))
        self.itos = [self.EOS, self.UNK, *chars]
        self.stoi = {c: i for i, c in enumerate(self.itos) if i >= 2}
        self.vocab_size = len(self.itos)
        self.eos_id = 0

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(text)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, 1) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.itos[i] for i in ids if i >= 2)

    def token_text(self, token_id: int) -> str:
        return self.itos[token_id]

    def to_json(self) -> str:
        return json.dumps({"kind": "char", "alphabet": "".join(self.itos[2:])})


class _Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        hidden = 4 * cfg.n_embd
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, hidden), nn.GELU(), nn.Linear(hidden, cfg.n_embd))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, c = x.shape  # (B, T, C)
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)  # 3 x (B, T, C)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, P+T, D)
            v = torch.cat([past[1], v], dim=2)
        p = k.shape[2] - t
        if p == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        elif t == 1:  # one decode step sees every cached key: no mask to build
            y = F.scaled_dot_product_attention(q, k, v)  # (B, H, 1, D)
        else:  # query i sits at position p+i and sees keys 0..p+i
            mask = torch.ones(t, p + t, dtype=torch.bool).tril(diagonal=p)  # (T, P+T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # (B, T, C)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, (k, v)


class TinyGPT(nn.Module):
    """A decoder-only transformer; ``forward(idx, past)`` returns logits and the grown KV."""

    def __init__(self, cfg: GPTConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        gen = torch.Generator().manual_seed(seed)
        for name, param in self.named_parameters():
            if param.dim() >= 2:
                std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(param, 0.0, std, generator=gen)
            elif name.endswith("bias"):
                nn.init.zeros_(param)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters()) - self.pos.weight.numel()

    def forward(self, idx: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        _, t = idx.shape  # (B, T)
        start = 0 if not past else past[0][0].shape[2]
        if start + t > self.cfg.block_size:
            raise ConfigError("sequence length", start + t, f"must be <= block_size {self.cfg.block_size}")
        positions = torch.arange(start, start + t)  # (T,)
        x = self.tok(idx) + self.pos(positions)  # (B, T, C)
        new: KV = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, past[i] if past else None)
            new.append(kv)
        logits = self.ln_f(x) @ self.tok.weight.T  # (B, T, V), head tied to the embedding
        return logits, new


def train_tiny_gpt(model: TinyGPT, data: Sequence[int] | torch.Tensor, cfg: TrainConfig) -> list[float]:
    """Train on random windows of the token stream ``data``; return the loss of every step."""
    ids = torch.as_tensor(data, dtype=torch.long)  # (N,)
    seq = min(cfg.seq_len, model.cfg.block_size)
    if ids.numel() <= seq + 1:
        raise ConfigError("data", f"{ids.numel()} tokens", f"must hold more than seq_len + 1 = {seq + 1} tokens")
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    losses: list[float] = []
    for step in range(cfg.steps):
        lr = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, ids.numel() - seq - 1, (cfg.batch_size,), generator=gen)  # (B,)
        x = torch.stack([ids[s : s + seq] for s in starts.tolist()])  # (B, T)
        y = torch.stack([ids[s + 1 : s + seq + 1] for s in starts.tolist()])  # (B, T)
        logits, _ = model(x)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def save_checkpoint(path: Path, model: TinyGPT, tokenizer: CharTokenizer, meta: dict[str, Any] | None = None) -> Path:
    """Write ``config.json``, ``tokenizer.json`` and ``model.pt`` to directory ``path`` atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.mkdir()
        doc = {"gpt": model.cfg.to_dict(), "meta": meta or {}}
        (tmp / "config.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        (tmp / "tokenizer.json").write_text(tokenizer.to_json() + "\n")
        torch.save(model.state_dict(), tmp / "model.pt")
    return Path(path)


def load_checkpoint(path: Path) -> tuple[TinyGPT, CharTokenizer, dict[str, Any]]:
    """Read a directory written by :func:`save_checkpoint`: (model in eval mode, tokenizer, meta)."""
    path = Path(path)
    if not (path / "model.pt").is_file():
        raise AssetError(f"{path} is not a tiny-GPT checkpoint (no model.pt); write one with save_checkpoint")
    doc = json.loads((path / "config.json").read_text())
    model = TinyGPT(GPTConfig.from_dict(doc["gpt"]))
    model.load_state_dict(torch.load(path / "model.pt", weights_only=True))
    model.eval()
    tok = json.loads((path / "tokenizer.json").read_text())
    return model, CharTokenizer(tok["alphabet"]), dict(doc.get("meta") or {})


class _TinyStep:
    def __init__(self, model: TinyGPT, tokenizer: Tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.eos_ids = frozenset({tokenizer.eos_id})

    def forward(self, ids: Sequence[int], cache: KV | None) -> tuple[torch.Tensor, KV]:
        logits, kv = self.model(torch.tensor([list(ids)], dtype=torch.long), cache)  # (1, T, V)
        return logits[0, -1], kv  # (V,)

    def crop(self, cache: KV, n: int) -> KV:
        return [(k[:, :, :n].clone(), v[:, :, :n].clone()) for k, v in cache]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.token_text(token_id)


@api(stability="alpha")
class TinyGPTBackend:
    """A TinyGPT behind :class:`~tenfold.llm.LLMBackend`, with KV caching and prefix reuse.

    Chats render ChatML-like (``<|role|>\\ncontent\\n``); the generation prompt is
    ``generation_prompt`` (default ``<|assistant|>\\n``). A reasoning model's template passes
    ``"<|assistant|>\\n<think>"`` so that generation starts inside the thinking; earlier
    turns, thinking included, are always rendered in full.
    """

    def __init__(self, model: TinyGPT, tokenizer: Tokenizer, *, name: str = "tiny-gpt",
                 prefix_cache_entries: int = 8, generation_prompt: str = "<|assistant|>\n") -> None:
        model.eval()
        self.generation_prompt = generation_prompt
        """Appended after the turns when ``add_generation_prompt`` is set."""
        self._step = _TinyStep(model, tokenizer)
        self.tokenizer = tokenizer
        self._name = name
        self._prefix: PrefixKVCache[KV] = PrefixKVCache(prefix_cache_entries)

    @classmethod
    def from_checkpoint(cls, path: Path, **kwargs: Any) -> TinyGPTBackend:
        model, tok, _ = load_checkpoint(path)
        return cls(model, tok, **kwargs)

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        return self._step.model.cfg.block_size

    @property
    def supports_prefix_cache(self) -> bool:
        return self._prefix.max_entries > 0

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True,
                    continue_final_message: bool = False) -> str:
        turns = check_messages(messages)
        last = len(turns) - 1
        if continue_final_message and turns[last]["role"] != "assistant":
            raise BackendError("continue_final_message=True needs the last message to have role 'assistant'")
        parts = [f"<|{t['role']}|>\n{t['content']}" + ("" if continue_final_message and i == last else "\n")
                 for i, t in enumerate(turns)]
        if add_generation_prompt and not continue_final_message:
            parts.append(self.generation_prompt)
        return "".join(parts)

    def stream_complete(self, prompt: str, params: SamplingParams | None = None) -> DecodeStream[KV]:
        return DecodeStream(self._step, self.tokenizer.encode(prompt), params or SamplingParams(),
                            context_window=self.context_window, model_name=self._name,
                            prefix_cache=self._prefix if self.supports_prefix_cache else None)

    def stream_chat(self, messages: Sequence[Message], params: SamplingParams | None = None, *,
                    add_generation_prompt: bool = True, continue_final_message: bool = False) -> DecodeStream[KV]:
        text = self.render_chat(messages, add_generation_prompt=add_generation_prompt,
                                continue_final_message=continue_final_message)
        return self.stream_complete(text, params)

    def complete(self, prompt: str, params: SamplingParams | None = None) -> Generation:
        return self.stream_complete(prompt, params).result

    def chat(self, messages: Sequence[Message], params: SamplingParams | None = None, *,
             add_generation_prompt: bool = True, continue_final_message: bool = False) -> Generation:
        return self.stream_chat(messages, params, add_generation_prompt=add_generation_prompt,
                                continue_final_message=continue_final_message).result

    def next_token(self, prompt: str | Sequence[Message], k: int = 10, **chat_flags: bool) -> NextToken:
        check_range("k", k, lo=1, hi=100)
        text = prompt if isinstance(prompt, str) else self.render_chat(prompt, **chat_flags)
        prefix = self._prefix if self.supports_prefix_cache else None
        return next_token(self._step, self.tokenizer.encode(text), k, context_window=self.context_window,
                          model_name=self._name, prefix_cache=prefix)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def prefix_cache_usage(self) -> float:
        """Filled prefix-cache entries over capacity, 0..1 (reported by the server's /metrics)."""
        return self._prefix.usage
