"""Marconi (Pan et al., MLSys'25; arXiv:2411.19379): prefix caching for hybrid
attention+SSM LLMs, with branch-point admission and FLOP-aware eviction.

Spec: shared/specs/marconi.md. The request flow is :mod:`.cache`; the tree is :mod:`.radix`;
policies are :mod:`.admission`, :mod:`.eviction` and :mod:`.tuner`; the vLLM+ baseline is
:mod:`.blocks`; traces, TTFT and replay are :mod:`.traces`, :mod:`.ttft` and
:mod:`.simulator`. The torch parts (:mod:`.tiny_hybrid`, :mod:`.engine`) are imported on
use so that importing this package stays light.
"""

from tenfold.systems.marconi.admission import ADMISSION, AdmissionPlan, MarconiAdmission
from tenfold.systems.marconi.blocks import BlockCache, BlockTree
from tenfold.systems.marconi.cache import POLICIES, CommitResult, Lookup, PrefixCache, RadixCache, make_cache
from tenfold.systems.marconi.config import HitRateBenchConfig, MarconiConfig, format_capacity, parse_capacity
from tenfold.systems.marconi.costmodel import PRESETS, HybridModelSpec
from tenfold.systems.marconi.eviction import EVICTION, FlopAwareEviction, LruLeafEviction
from tenfold.systems.marconi.radix import Match, Node, RadixTree
from tenfold.systems.marconi.simulator import ReplayStats, replay
from tenfold.systems.marconi.traces import (
    GENERATORS,
    Request,
    Trace,
    agent_trace,
    chat_trace,
    load_trace,
    save_trace,
    sharegpt_trace,
    sysprompt_trace,
)
from tenfold.systems.marconi.ttft import LinearTTFT, StepTTFT
from tenfold.systems.marconi.tuner import ALPHA_GRID, AlphaTuner

__all__ = [
    "ADMISSION",
    "ALPHA_GRID",
    "EVICTION",
    "GENERATORS",
    "POLICIES",
    "PRESETS",
    "AdmissionPlan",
    "AlphaTuner",
    "BlockCache",
    "BlockTree",
    "CommitResult",
    "FlopAwareEviction",
    "HitRateBenchConfig",
    "HybridModelSpec",
    "LinearTTFT",
    "Lookup",
    "LruLeafEviction",
    "MarconiAdmission",
    "MarconiConfig",
    "Match",
    "Node",
    "PrefixCache",
    "RadixCache",
    "RadixTree",
    "ReplayStats",
    "Request",
    "StepTTFT",
    "Trace",
    "agent_trace",
    "chat_trace",
    "format_capacity",
    "load_trace",
    "make_cache",
    "parse_capacity",
    "replay",
    "save_trace",
    "sharegpt_trace",
    "sysprompt_trace",
]
