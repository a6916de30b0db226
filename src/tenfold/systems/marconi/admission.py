"""Marconi's admission: which SSM checkpoints a finished request adds (spec §2.3).

A hybrid model's SSM state is updated in place, so a prefix is only resumable where a full
checkpoint was saved. Marconi (paper §4.1) saves at most two per request:

(a) **purely-input sharing**: if the request's input branched off mid-edge at offset ``p``
    (the lookup's ``checkpoint_at``), the engine saves the state at ``p`` during a chunked
    prefill split there, and commit splits the edge at ``p`` and stores it in the new
    internal node;
(b) **input+output reuse**: the state after the last decoded token goes on the new leaf.

SGLang+ uses the same admission (it differs only in eviction); vLLM+ checkpoints every
block instead (:mod:`.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tenfold.core.registry import Registry
from tenfold.systems.marconi.costmodel import HybridModelSpec
from tenfold.systems.marconi.radix import Match

__all__ = ["ADMISSION", "AdmissionPlan", "MarconiAdmission"]


@dataclass(frozen=True)
class AdmissionPlan:
    """What a commit inserts: a split (with its checkpoint) and/or a leaf."""

    split_at: int | None
    """Token offset of the branch-point checkpoint (a new internal node), if any."""
    leaf: tuple[int, int] | None
    """[start, end) of the new leaf's edge; its checkpoint is the state at ``end``."""

    def added_bytes(self, spec: HybridModelSpec) -> int:
        states = (self.split_at is not None) + (self.leaf is not None)
        kv = self.leaf[1] - self.leaf[0] if self.leaf is not None else 0
        return states * spec.ckpt_bytes + spec.kv_bytes(kv)


ADMISSION: Registry[type[MarconiAdmission]] = Registry("admission policy")


@ADMISSION.register("marconi")
class MarconiAdmission:
    """Branch-point speculative insertion plus a checkpoint after the last decoded token."""

    def plan(self, dry: Match, n_tokens: int) -> AdmissionPlan:
        split_at = dry.prefix_len if dry.partial is not None else None
        leaf = (dry.prefix_len, n_tokens) if n_tokens > dry.prefix_len else None
        return AdmissionPlan(split_at, leaf)

    def need_bytes(self, plan: AdmissionPlan, dry: Match, n_tokens: int, spec: HybridModelSpec,
                   *, artifact_compat: bool = False) -> int:
        """Bytes to make room for. By default exactly what the plan adds (design choice);
        ``artifact_compat`` uses the artifact's estimate (2 if branching else 1)
        checkpoints plus the KV of everything past the prefix, leaf or not."""
        if artifact_compat:
            states = 2 if dry.partial is not None else 1
            return states * spec.ckpt_bytes + spec.kv_bytes(n_tokens - dry.prefix_len)
        return plan.added_bytes(spec)
