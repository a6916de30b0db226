"""Guillotine's policy: levels, trigger map, quorum, rates and resource caps (spec sections 2, 9).

The policy is a frozen :class:`~tenfold.core.config.Config` loaded from YAML (or JSON/TOML)
by :func:`load_policy`. Every bad value -- duplicate level names, an unknown trigger, a
trigger level out of range, M > N, a rate <= 0 -- raises ``ConfigError`` naming the field,
before anything is launched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tenfold.core.config import Config, check_positive, check_range
from tenfold.errors import ConfigError

__all__ = ["DEFAULT_LEVEL_NAMES", "DEFAULT_TRIGGERS", "TRIGGERS", "Policy", "RedteamBenchConfig", "load_policy"]

DEFAULT_LEVEL_NAMES: tuple[str, ...] = (
    "standard", "probation", "severed", "offline", "decapitation", "immolation",
)
"""The six levels. 0 and 5 follow the paper; the middle names are project defaults."""

TRIGGERS: tuple[str, ...] = (
    "socket_attempt", "socket_repeat", "quota", "detector_score", "rate_overflow",
    "canary", "sigsys", "oom", "pids_max", "weight_fingerprint", "audit_write_failure",
    "measurement_mismatch", "heartbeat_lost", "channel_lost", "malformed_input",
)
"""Every trigger name a policy may map to a minimum level."""

DEFAULT_TRIGGERS: dict[str, int] = {
    "socket_attempt": 1, "socket_repeat": 2, "quota": 1, "detector_score": 1, "rate_overflow": 1,
    "canary": 2, "sigsys": 3, "oom": 3, "pids_max": 3, "weight_fingerprint": 3,
    "audit_write_failure": 3, "measurement_mismatch": 3, "heartbeat_lost": 3, "channel_lost": 3,
    "malformed_input": 1,
}


@dataclass(frozen=True)
class Policy(Config):
    """One deployment's policy. Its canonical JSON is part of the launch measurement."""

    deployment: str = "default"
    """Deployment ID: names the state directory; [A-Za-z0-9_-]+."""
    level_names: tuple[str, ...] = DEFAULT_LEVEL_NAMES
    """Names of the six levels, distinct."""
    triggers: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_TRIGGERS))
    """Trigger name -> minimum level; ``level = max(level, min)``."""
    operators: tuple[str, ...] = ()
    """Hex Ed25519 public keys of the N restoration operators."""
    quorum_m: int = 2
    """Approvals needed to lower one level; 1 <= M <= N."""
    challenge_ttl_s: float = 900.0
    """Lifetime of a restoration challenge."""
    rate_per_s: float = 200.0
    """Token-bucket refill rate of each port at level 0."""
    burst: int = 400
    """Token-bucket size."""
    probation_rate_per_s: float = 20.0
    """Refill rate at level 1 (tighter)."""
    max_frame_bytes: int = 1 << 20
    """Size cap of one port frame (FrameTooLarge beyond it)."""
    socket_repeat_count: int = 3
    """Socket attempts within ``socket_repeat_window_s`` that raise ``socket_repeat``."""
    socket_repeat_window_s: float = 60.0
    canaries: tuple[str, ...] = ()
    """Canary strings planted in the sandbox; any sighting in output is a trigger."""
    entropy_threshold: float = 7.2
    """Shannon entropy (bits/byte) of a >= 256 B window above which ``detector_score`` fires."""
    memory_max_bytes: int = 1 << 30
    pids_max: int = 64
    cpu_quota_pct: int = 100
    """CPU cap of the sandbox cgroup in percent of one core."""
    tmpfs_bytes: int = 64 << 20
    """Size of the sandbox's writable workdir tmpfs."""
    nofile: int = 256
    """RLIMIT_NOFILE inside the sandbox."""
    fsize_bytes: int = 64 << 20
    """RLIMIT_FSIZE inside the sandbox."""
    heartbeat_ms: int = 100
    watchdog_deadline_ms: int = 500
    http_allowlist: tuple[str, ...] = ()
    """host:port pairs the ``http`` port may fetch from."""
    fs_quota_bytes: int = 8 << 20
    """Quota of the ``fs`` artifact port."""

    def __post_init__(self) -> None:
        if not self.deployment or not all(c.isalnum() or c in "-_" for c in self.deployment):
            raise ConfigError("deployment", self.deployment, "must match [A-Za-z0-9_-]+")
        if len(self.level_names) != 6:
            raise ConfigError("level_names", list(self.level_names), "must name exactly 6 levels")
        if len(set(self.level_names)) != 6:
            raise ConfigError("level_names", list(self.level_names), "names must be distinct")
        for name, lvl in self.triggers.items():
            if name not in TRIGGERS:
                raise ConfigError(f"triggers.{name}", lvl, "unknown trigger; known: " + ", ".join(TRIGGERS))
            check_range(f"triggers.{name}", lvl, lo=0, hi=3)
        if len(set(self.operators)) != len(self.operators):
            raise ConfigError("operators", list(self.operators), "keys must be distinct")
        for i, key in enumerate(self.operators):
            if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
                raise ConfigError(f"operators[{i}]", key, "must be a 64-char lowercase hex Ed25519 public key")
        check_range("quorum_m", self.quorum_m, lo=1)
        if self.operators and self.quorum_m > len(self.operators):
            raise ConfigError("quorum_m", self.quorum_m, f"must be <= N = {len(self.operators)} operators")
        # With no operators at all (N = 0) restoration is disabled: ``restore request`` raises
        # ConfigError('quorum_m', M, 'must be <= N = 0 operators ...') instead.
        for name in ("challenge_ttl_s", "rate_per_s", "probation_rate_per_s", "socket_repeat_window_s",
                     "entropy_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(name, value, "must be a finite number")
        for name in ("challenge_ttl_s", "rate_per_s", "burst", "probation_rate_per_s", "max_frame_bytes",
                     "socket_repeat_count", "socket_repeat_window_s", "memory_max_bytes", "pids_max",
                     "cpu_quota_pct", "tmpfs_bytes", "nofile", "fsize_bytes", "heartbeat_ms",
                     "watchdog_deadline_ms", "fs_quota_bytes"):
            check_positive(name, getattr(self, name))
        check_range("entropy_threshold", self.entropy_threshold, lo=0.0, hi=8.0)
        if self.probation_rate_per_s > self.rate_per_s:
            raise ConfigError("probation_rate_per_s", self.probation_rate_per_s,
                              f"must be <= rate_per_s = {self.rate_per_s} (probation is tighter)")
        if self.watchdog_deadline_ms <= self.heartbeat_ms:
            raise ConfigError("watchdog_deadline_ms", self.watchdog_deadline_ms,
                              f"must exceed heartbeat_ms = {self.heartbeat_ms}")

    def min_level(self, trigger: str) -> int:
        """The minimum level a trigger demands (unknown names are a ConfigError)."""
        if trigger not in TRIGGERS:
            raise ConfigError("trigger", trigger, "unknown trigger; known: " + ", ".join(TRIGGERS))
        return self.triggers.get(trigger, DEFAULT_TRIGGERS[trigger])

    def canonical(self) -> bytes:
        """Canonical JSON bytes (sorted keys, no spaces): what the measurement hashes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()


def load_policy(path: str | Path) -> Policy:
    """Load a policy from ``.yaml``/``.yml`` (or ``.json``/``.toml``); ConfigError on any bad field."""
    p = Path(path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError("(file)", str(p), "must be an existing policy file")
        try:
            data: Any = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError("(file)", str(p), f"is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("(file)", str(p), "must hold a mapping at top level")
        return Policy.from_dict(data)
    return Policy.load(p)


@dataclass(frozen=True)
class RedteamBenchConfig(Config):
    """The ``guillotine/redteam`` benchmark (spec section 7)."""

    arms: tuple[str, ...] = ("unsandboxed", "single_boundary", "guillotine")
    passes: int = 1
    """Catalogue passes per arm."""
    benign_episodes: int = 10
    """K benign episodes (every port) on the guillotine arm; false escalations are counted."""
    io_requests: int = 200
    """Echo round trips per arm for the mediation overhead."""
    model_requests: int = 10
    """MiniLM embedding requests served from inside the sandbox (guillotine and unsandboxed arms)."""
    baseline_subset: bool = False
    """Run only the first entry of each category on the unsandboxed arm (quick mode, to fit 10 min)."""

    def __post_init__(self) -> None:
        for i, arm in enumerate(self.arms):
            if arm not in ("unsandboxed", "single_boundary", "guillotine"):
                raise ConfigError(f"arms[{i}]", arm, "must be one of 'unsandboxed', 'single_boundary', 'guillotine'")
        if "guillotine" not in self.arms:
            raise ConfigError("arms", list(self.arms), "must include 'guillotine'")
        for name in ("passes", "benign_episodes", "io_requests", "model_requests"):
            check_positive(name, getattr(self, name))
