"""The hybrid model's cost model: checkpoint and KV bytes, prefill FLOPs (spec §2.1).

Marconi (arXiv:2411.19379, §4.2) weighs each cache entry by the prefill FLOPs it saves per
byte it holds. Both numbers come from :class:`HybridModelSpec`: layer counts, the model
width ``d`` and the SSM state size ``n``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenfold.core.registry import Registry
from tenfold.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["PRESETS", "HybridModelSpec", "attn_flops", "mamba_flops", "mlp_flops"]


def attn_flops(length: int, d: int) -> float:
    """One attention layer over ``length`` tokens: projections 8Ld² plus scores 4L²d."""
    return 8.0 * length * d * d + 4.0 * length * length * d


def mlp_flops(length: int, d: int) -> float:
    """One MLP layer (4x expansion, up and down): 16Ld²."""
    return 16.0 * length * d * d


def mamba_flops(length: int, d: int, n: int) -> float:
    """One Mamba2 layer: projections 12Ld², the scan 16Ldn, elementwise 10Ld."""
    return 12.0 * length * d * d + 16.0 * length * d * n + 10.0 * length * d


@dataclass(frozen=True)
class HybridModelSpec:
    """Shape of a hybrid attention+SSM model, enough to price its cache entries."""

    n_ssm: int
    n_attn: int
    n_mlp: int
    d: int
    n: int
    expand: int = 2
    conv_kernel: int = 4
    bytes_per_el: int = 2
    name: str = "custom"
    state_bytes_override: int | None = None
    """Exact bytes of one checkpoint, measured from real tensors (``from_torch``)."""
    kv_token_bytes_override: int | None = None
    """Exact KV bytes per token, measured from real tensors (``from_torch``)."""

    def __post_init__(self) -> None:
        for field in ("n_ssm", "n_attn", "n_mlp", "d", "n", "expand", "conv_kernel", "bytes_per_el"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # NaN and 4.5 included
                raise ConfigError(field, value, "must be an integer")
        for field in ("n_ssm", "n_attn", "n_mlp"):
            if getattr(self, field) < 0:
                raise ConfigError(field, getattr(self, field), "must be >= 0")
        for field in ("d", "n", "expand", "conv_kernel", "bytes_per_el"):
            if getattr(self, field) < 1:
                raise ConfigError(field, getattr(self, field), "must be >= 1")

    @property
    def ssm_layer_bytes(self) -> int:
        # NOTE: the spec's (and the artifact's) formula counts d·n SSM elements, not the
        # expand·d·n of a real Mamba2 layer, and a conv window of conv_kernel columns; the
        # presets keep it so that their byte counts match the paper. ``from_torch`` instead
        # measures the real tensors.
        return self.bytes_per_el * (self.d * self.n + (self.expand * self.d + 2 * self.n) * self.conv_kernel)

    @property
    def ckpt_bytes(self) -> int:
        """Bytes of one SSM checkpoint (all SSM layers)."""
        if self.state_bytes_override is not None:
            return self.state_bytes_override
        return self.n_ssm * self.ssm_layer_bytes

    @property
    def kv_token_bytes(self) -> int:
        """Attention KV bytes per token (K and V, all attention layers)."""
        if self.kv_token_bytes_override is not None:
            return self.kv_token_bytes_override
        return self.n_attn * 2 * self.d * self.bytes_per_el

    def kv_bytes(self, length: int) -> int:
        return self.kv_token_bytes * length

    def prefill_flops(self, length: int) -> float:
        """FLOPs to prefill ``length`` tokens from scratch (layer-count-weighted sum)."""
        if length <= 0:
            return 0.0
        return (self.n_attn * attn_flops(length, self.d) + self.n_mlp * mlp_flops(length, self.d)
                + self.n_ssm * mamba_flops(length, self.d, self.n))

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "n_ssm": self.n_ssm, "n_attn": self.n_attn, "n_mlp": self.n_mlp,
                "d": self.d, "n": self.n, "expand": self.expand, "conv_kernel": self.conv_kernel,
                "bytes_per_el": self.bytes_per_el, "ckpt_bytes": self.ckpt_bytes,
                "kv_token_bytes": self.kv_token_bytes}

    @classmethod
    def preset(cls, name: str) -> HybridModelSpec:
        """A named preset; an unknown name raises UnknownNameError listing the known ones."""
        return PRESETS.get(name)

    @classmethod
    def from_torch(cls, model: torch.nn.Module) -> HybridModelSpec:
        """The spec of a :class:`~.tiny_hybrid.TinyHybridLM`, with byte sizes read from its
        real tensors: a checkpoint is every SSM layer's conv and SSM state plus the last
        hidden state (d floats, for the next-token logits); KV is K and V per token."""
        from tenfold.systems.marconi.tiny_hybrid import TinyHybridLM

        if not isinstance(model, TinyHybridLM):
            raise ConfigError("model", type(model).__name__, "must be a TinyHybridLM")
        cfg = model.cfg
        state = model.empty_state()
        n_ssm = sum(1 for kind in cfg.layout if kind == "ssm")
        n_attn = sum(1 for kind in cfg.layout if kind == "attn")
        return cls(n_ssm=n_ssm, n_attn=n_attn, n_mlp=len(cfg.layout), d=cfg.d_model, n=cfg.d_state,
                   expand=cfg.expand, conv_kernel=cfg.conv_kernel, bytes_per_el=4, name="tiny-hybrid",
                   state_bytes_override=state.ssm_nbytes() + cfg.d_model * 4,
                   kv_token_bytes_override=n_attn * 2 * cfg.d_model * 4)


PRESETS: Registry[HybridModelSpec] = Registry("model preset")
PRESETS.add("nvidia-hybrid-7b", HybridModelSpec(n_ssm=24, n_attn=4, n_mlp=28, d=4096, n=128,
                                                name="nvidia-hybrid-7b"))
"""The 7B Attention-Mamba2 hybrid of arXiv:2406.07887 (the paper's default)."""
