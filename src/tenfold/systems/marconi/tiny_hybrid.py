"""TinyHybridLM: a real hybrid attention+SSM language model in torch, for CPU (spec §4).

Named honestly: **"tiny hybrid, random-init"**: seeded random weights, no training and no
quality claim (no SSM or hybrid LM ships in any package; see specs/assets.md). It exists to
prove that resuming from a cached SSM checkpoint plus cached KV gives the same logits as a
full prefill, and to measure real CPU prefill time saved by prefix caching.

Layout (spec §4): vocabulary 49,152 (SmolLM2 ids), d=128, d_state n=64; 7 blocks, each a
mixer plus an MLP: 6 Mamba2-style SSM mixers and 1 attention mixer (SSM×3, attention,
SSM×3). An SSM mixer has a causal depthwise conv (kernel 4) with a conv state and a
selective scan with a per-head scalar decay (Mamba2's SSD); prefill runs the chunked SSD
form, and :func:`ssd_recurrent` is the token-by-token recurrence it must equal.

NOTE: the attention layer has no positional encoding (the SSM layers before it carry
position); the NoPE choice keeps resumption exact without position bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HybridState", "TinyHybridConfig", "TinyHybridLM", "ssd_chunked", "ssd_recurrent"]


@dataclass(frozen=True)
class TinyHybridConfig:
    vocab: int = 49_152
    d_model: int = 128
    d_state: int = 64
    expand: int = 2
    headdim: int = 32
    conv_kernel: int = 4
    attn_heads: int = 4
    layout: tuple[str, ...] = ("ssm", "ssm", "ssm", "attn", "ssm", "ssm", "ssm")
    chunk: int = 64

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def ssm_heads(self) -> int:
        return self.d_inner // self.headdim

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.d_state


@dataclass
class HybridState:
    """Everything needed to resume at position ``pos``.

    ``ssm[i]`` = (conv state (conv_dim, k−1), SSM state (H, P, N)) of the i-th SSM layer,
    ``kv[j]`` = (K, V) of shape (pos, heads, headdim) of the j-th attention layer, and
    ``hidden`` (d,) the last position's final hidden state, from which the next-token
    logits are recomputed (so a full hit needs no prefill).
    """

    pos: int
    ssm: list[tuple[torch.Tensor, torch.Tensor]]
    kv: list[tuple[torch.Tensor, torch.Tensor]]
    hidden: torch.Tensor | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def checkpoint(self) -> HybridState:
        """A copy of the SSM part (the cache checkpoint), without KV."""
        return HybridState(self.pos, [(c.clone(), h.clone()) for c, h in self.ssm], [],
                           None if self.hidden is None else self.hidden.clone())

    def checkpoint_nbytes(self) -> int:
        n = sum(c.nbytes + h.nbytes for c, h in self.ssm)
        return n + (self.hidden.nbytes if self.hidden is not None else 0)

    def ssm_nbytes(self) -> int:
        return sum(c.nbytes + h.nbytes for c, h in self.ssm)


def ssd_recurrent(x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                  h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-by-token scan: h ← exp(a_t)·h + dt_t·x_t⊗B_t; y_t = h·C_t.

    x (T, H, P), dt and a (T, H), b and c (T, N), h (H, P, N) -> y (T, H, P), h.
    """
    ys = []
    for t in range(x.shape[0]):
        h = torch.exp(a[t])[:, None, None] * h + (dt[t][:, None] * x[t])[:, :, None] * b[t][None, None, :]
        ys.append(torch.einsum("hpn,n->hp", h, c[t]))
    return torch.stack(ys) if ys else x.new_zeros(x.shape), h


def ssd_chunked(x: torch.Tensor, dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                h: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same scan in chunks (Mamba2's SSD): quadratic within a chunk, state across."""
    ys = []
    for s in range(0, x.shape[0], chunk):
        xc, dtc, ac, bc, cc = x[s:s + chunk], dt[s:s + chunk], a[s:s + chunk], b[s:s + chunk], c[s:s + chunk]
        cum = torch.cumsum(ac, dim=0)  # (Q, H)
        seg = cum[:, None, :] - cum[None, :, :]  # (Q, Q, H): i, j
        q = xc.shape[0]
        causal = torch.ones(q, q, dtype=torch.bool).tril()
        decay = torch.exp(seg.masked_fill(~causal[:, :, None], float("-inf")))  # (Q, Q, H)
        xdt = xc * dtc[:, :, None]  # (Q, H, P)
        scores = cc @ bc.T  # (Q, Q)
        y = torch.einsum("ijh,jhp->ihp", decay * scores[:, :, None], xdt)
        y = y + torch.einsum("hpn,in->ihp", h, cc) * torch.exp(cum)[:, :, None]
        to_end = torch.exp(cum[-1][None, :] - cum)  # (Q, H)
        h = h * torch.exp(cum[-1])[:, None, None] + torch.einsum("jh,jhp,jn->hpn", to_end, xdt, bc)
        ys.append(y)
    return torch.cat(ys) if ys else x.new_zeros(x.shape), h


class _RMSNorm(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class _SSM(nn.Module):
    def __init__(self, cfg: TinyHybridConfig) -> None:
        super().__init__()
        self.cfg = cfg
        di, n, nh = cfg.d_inner, cfg.d_state, cfg.ssm_heads
        self.in_proj = nn.Linear(cfg.d_model, 2 * di + 2 * n + nh, bias=False)
        self.conv_w = nn.Parameter(torch.randn(cfg.conv_dim, cfg.conv_kernel) * 0.2)
        self.conv_b = nn.Parameter(torch.zeros(cfg.conv_dim))
        self.a_log = nn.Parameter(torch.log(torch.linspace(1.0, 8.0, nh)))
        self.dt_bias = nn.Parameter(torch.linspace(-4.0, -1.0, nh))
        self.d_skip = nn.Parameter(torch.ones(nh))
        self.norm = _RMSNorm(di)
        self.out_proj = nn.Linear(di, cfg.d_model, bias=False)

    def forward(self, u: torch.Tensor, conv: torch.Tensor, h: torch.Tensor, *, recurrent: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        di, n, nh, p = cfg.d_inner, cfg.d_state, cfg.ssm_heads, cfg.headdim
        t = u.shape[0]
        z, xbc, dt = torch.split(self.in_proj(u), [di, di + 2 * n, nh], dim=-1)  # (T, ·)
        inp = torch.cat([conv.T, xbc], dim=0)  # (k−1+T, conv_dim)
        new_conv = inp[-(cfg.conv_kernel - 1):].T.contiguous()  # (conv_dim, k−1)
        win = inp.unfold(0, cfg.conv_kernel, 1)  # (T, conv_dim, k)
        xbc = F.silu((win * self.conv_w).sum(-1) + self.conv_b)  # (T, conv_dim)
        x, b, c = torch.split(xbc, [di, n, n], dim=-1)
        x = x.reshape(t, nh, p)  # (T, H, P)
        dt = F.softplus(dt + self.dt_bias)  # (T, H)
        a = dt * -torch.exp(self.a_log)  # (T, H)
        if recurrent:
            y, h = ssd_recurrent(x, dt, a, b, c, h)
        else:
            y, h = ssd_chunked(x, dt, a, b, c, h, cfg.chunk)
        y = (y + x * self.d_skip[None, :, None]).reshape(t, di)
        return self.out_proj(self.norm(y * F.silu(z))), new_conv, h


class _Attention(nn.Module):
    def __init__(self, cfg: TinyHybridConfig) -> None:
        super().__init__()
        self.heads = cfg.attn_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, u: torch.Tensor, k_past: torch.Tensor, v_past: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t, d = u.shape
        hd = d // self.heads
        q, k, v = self.qkv(u).view(t, 3, self.heads, hd).unbind(1)  # each (T, h, hd)
        k_all = torch.cat([k_past, k])  # (P+T, h, hd)
        v_all = torch.cat([v_past, v])
        past = k_past.shape[0]
        mask = torch.ones(t, past + t, dtype=torch.bool).tril(diagonal=past)  # (T, P+T)
        y = F.scaled_dot_product_attention(q.transpose(0, 1), k_all.transpose(0, 1), v_all.transpose(0, 1),
                                           attn_mask=mask)  # (h, T, hd)
        return self.out(y.transpose(0, 1).reshape(t, d)), k_all, v_all


class _Block(nn.Module):
    def __init__(self, cfg: TinyHybridConfig, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.norm1 = _RMSNorm(cfg.d_model)
        self.mixer: nn.Module = _SSM(cfg) if kind == "ssm" else _Attention(cfg)
        self.norm2 = _RMSNorm(cfg.d_model)
        self.mlp: nn.Module = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(),
                                 nn.Linear(4 * cfg.d_model, cfg.d_model))


class TinyHybridLM(nn.Module):
    """Tiny hybrid, random-init. ``prefill(ids, state)`` continues ``state`` over ``ids``
    and returns the logits of every new position and the state after them."""

    label = "tiny hybrid, random-init"

    def __init__(self, cfg: TinyHybridConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(_Block(cfg, kind) for kind in cfg.layout)
        self.norm = _RMSNorm(cfg.d_model)

    @classmethod
    def create(cls, cfg: TinyHybridConfig | None = None, seed: int = 0) -> TinyHybridLM:
        """Seeded random weights (the global torch rng is left untouched)."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = cls(cfg or TinyHybridConfig())
        return model.eval()

    def empty_state(self) -> HybridState:
        cfg = self.cfg
        ssm = [(torch.zeros(cfg.conv_dim, cfg.conv_kernel - 1), torch.zeros(cfg.ssm_heads, cfg.headdim, cfg.d_state))
               for kind in cfg.layout if kind == "ssm"]
        hd = cfg.d_model // cfg.attn_heads
        kv = [(torch.zeros(0, cfg.attn_heads, hd), torch.zeros(0, cfg.attn_heads, hd))
              for kind in cfg.layout if kind == "attn"]
        return HybridState(0, ssm, kv)

    def logits_of(self, hidden: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.norm(hidden) @ self.embed.weight.T  # (..., V)
        return logits

    def prefill(self, ids: torch.Tensor, state: HybridState, *, recurrent: bool = False, all_logits: bool = True
                ) -> tuple[torch.Tensor, HybridState]:
        """ids (T,) -> logits (T, V) (or (1, V) of the last position when not
        ``all_logits``, as a serving engine computes) and the state after the T tokens."""
        if ids.shape[0] == 0:
            return torch.zeros(0, self.cfg.vocab), state
        x = self.embed(ids)  # (T, d)
        ssm_out: list[tuple[torch.Tensor, torch.Tensor]] = []
        kv_out: list[tuple[torch.Tensor, torch.Tensor]] = []
        i_ssm = i_attn = 0
        for block in self.blocks:
            assert isinstance(block, _Block)
            u = block.norm1(x)
            if isinstance(block.mixer, _SSM):
                conv, h = state.ssm[i_ssm]
                y, conv, h = block.mixer(u, conv, h, recurrent=recurrent)
                ssm_out.append((conv, h))
                i_ssm += 1
            else:
                assert isinstance(block.mixer, _Attention)
                k, v = state.kv[i_attn]
                y, k, v = block.mixer(u, k, v)
                kv_out.append((k, v))
                i_attn += 1
            x = x + y
            x = x + block.mlp(block.norm2(x))
        hidden = x[-1].clone()
        new_state = HybridState(state.pos + ids.shape[0], ssm_out, kv_out, hidden)
        return self.logits_of(x if all_logits else x[-1:]), new_state
