"""Launch measurement and signed attestation (spec section 2, "Attestation").

The measurement is SHA-256 over the canonical JSON of: the hashes of the supervisor-side
and g-init source files, the canonical policy, the sandbox argv, the seccomp BPF
(``seccomp_export_bpf``), the Landlock rules and the model file hashes. The supervisor signs
the document at launch; :func:`verify_attestation` recomputes everything from the current
files and reports every difference (a changed policy or argv fails).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenfold.core.assets import cache_dir
from tenfold.systems.guillotine.deployment import Deployment
from tenfold.systems.guillotine.keys import SigningKey, canonical, sha256_hex, verify_signature, write_private
from tenfold.systems.guillotine.seccomp_filter import filter_digest

__all__ = ["AttestationReport", "measure", "verify_attestation", "write_attestation"]

_TCB_MODULES = ("supervisor", "sandbox_init", "seccomp_filter", "landlock", "pipeline", "detectors", "watchdog",
                "audit", "levels", "quorum", "cgroup", "backends", "ports", "failsafe")
_HASH_CACHE: dict[tuple[str, int, float], str] = {}


def _file_hash(path: Path) -> str:
    """SHA-256 of a file; big files (models) are remembered on disk by path, size and mtime."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime)
    if key in _HASH_CACHE:
        return _HASH_CACHE[key]
    memo = None
    if st.st_size > (8 << 20):
        tag = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
        memo = cache_dir("guillotine") / f"sha256-{tag}"
        if memo.exists():
            _HASH_CACHE[key] = memo.read_text().strip()
            return _HASH_CACHE[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    _HASH_CACHE[key] = h.hexdigest()
    if memo is not None:
        memo.write_text(_HASH_CACHE[key])
    return _HASH_CACHE[key]


def measure(dep: Deployment, argv: Sequence[str], landlock: dict[str, Any], models: Sequence[Path],
            notify: bool = True) -> dict[str, Any]:
    """The measured components and their combined SHA-256."""
    here = Path(__file__).resolve().parent
    parts: dict[str, Any] = {
        "tcb": {m: _file_hash(here / f"{m}.py") for m in _TCB_MODULES},
        "policy": sha256_hex((dep.root / "policy.json").read_bytes()),
        "argv": list(argv),
        "seccomp_bpf": filter_digest(notify=notify),
        "landlock": landlock,
        "models": {str(p): _file_hash(p) for p in models},
    }
    return {"deployment": dep.name, "parts": parts, "measurement": sha256_hex(canonical(parts))}


def write_attestation(dep: Deployment, doc: dict[str, Any], key: SigningKey) -> Path:
    signed = {"doc": doc, "key_id": key.key_id, "sig": key.sign(canonical(doc))}
    return write_private(dep.root / "attestation.json", canonical(signed))


@dataclass
class AttestationReport:
    measurement: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "measurement": self.measurement, "errors": list(self.errors)}


def verify_attestation(dep: Deployment, argv: Sequence[str] | None = None,
                       doc_path: Path | None = None) -> AttestationReport:
    """Check the signature, then recompute each part; ``argv=None`` reuses the recorded argv."""
    rep = AttestationReport()
    path = doc_path or dep.root / "attestation.json"
    try:
        signed = json.loads(path.read_bytes())
        doc = signed["doc"]
    except (OSError, ValueError, KeyError, TypeError):
        rep.errors.append(f"attestation {path} missing or unreadable")
        return rep
    rep.measurement = str(doc.get("measurement", ""))
    if signed.get("key_id") not in dep.trusted_keys() or not verify_signature(
            str(signed["key_id"]), canonical(doc), str(signed.get("sig", ""))):
        rep.errors.append("attestation signature invalid")
        return rep
    parts = doc["parts"]
    models = [Path(p) for p in parts["models"]]
    try:
        now = measure(dep, parts["argv"] if argv is None else argv, parts["landlock"], models)
    except OSError as exc:
        rep.errors.append(f"cannot recompute: {exc}")
        return rep
    for k, v in now["parts"].items():
        if v != parts.get(k):
            rep.errors.append(f"{k} changed since launch")
    if not rep.errors and now["measurement"] != doc["measurement"]:
        rep.errors.append("measurement mismatch")
    return rep
