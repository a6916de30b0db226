"""Streaming output detectors (spec section 2, pipeline step 5).

Each port stream keeps the last ``W - 1`` bytes of what it sent (``W`` = the longest pattern),
so a canary split across two messages is still seen. Every payload is also scanned in its
base64-, hex- and percent-decoded layers: base64 in all 4 alignments (0..3 leading characters
dropped), standard or urlsafe alphabet; hex in both alignments, with whitespace and ``:``
separators ignored. The minimum encoded run shrinks with the shortest canary
(``ceil(4 L / 3) - 2`` base64 characters, ``L`` hex bytes, capped at the 16 / 8 defaults).

:meth:`DetectorSet.scan_message` adds a *joint* canary scan over the junctions of the
concatenated string leaves of a message (wire order, with and without map keys), with a bounded
carry-over (``3 L - 1`` bytes, ``L`` = the longest canary) shared by every port of the
deployment and put in front of the head of every leaf of the next message. A blocked message
leaves every carry-over unchanged.

- **canaries**: substrings planted in the sandbox -> trigger ``canary``.
- **weight fingerprint**: a polynomial (Rabin-Karp) hash of every aligned 64-byte block of
  the weight files, held as a sorted ``uint64`` array. The payload is hashed at *every*
  offset, and each hit is confirmed bytewise against the weights, so any verbatim run of
  >= 127 bytes (which must contain one whole aligned block) is caught -> ``weight_fingerprint``.
  NOTE: the hash is taken mod 2**64 (numpy's wrapping uint64 arithmetic) rather than the
  spec's 2**61 - 1: numpy has no 128-bit product, and the bytewise confirmation makes
  collisions cost time only, never a wrong verdict.
- **entropy**: Shannon entropy (bits/byte) of a >= 256-byte window above the threshold ->
  ``detector_score``.
- **secrets**: private-key blocks and API-token patterns -> ``detector_score``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import mmap
import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["BLOCK", "Detection", "DetectorSet", "WeightIndex", "decoded_layers", "extract_bytes", "extract_leaves",
           "shannon_entropy"]

BLOCK = 64
_BASE = np.uint64(0x100000001B3)  # odd 64-bit multiplier
_POWERS = np.array([pow(int(_BASE), BLOCK - 1 - j, 1 << 64) for j in range(BLOCK)], dtype=np.uint64)
_SECRETS = [
    re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(rb"AKIA[0-9A-Z]{16}"),
    re.compile(rb"sk-[A-Za-z0-9]{32,}"),
    re.compile(rb"ghp_[A-Za-z0-9]{36}"),
]
B64_MIN = 16  # default minimum base64 run (characters, padding excluded)
HEX_MIN = 8  # default minimum hex run (decoded bytes)
_HEX_RUN = re.compile(rb"[0-9a-fA-F](?:[\s:]*[0-9a-fA-F])+")
_HEX_SEP = re.compile(rb"[\s:]+")
_URLSAFE = bytes.maketrans(b"-_", b"+/")


@functools.lru_cache(maxsize=32)
def _b64_run(n: int) -> re.Pattern[bytes]:
    return re.compile(rb"[A-Za-z0-9+/_-]{%d,}" % n)


@dataclass(frozen=True)
class Detection:
    trigger: str
    detector: str
    detail: str


def shannon_entropy(data: bytes) -> float:
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum())


_BINV = np.uint64(pow(int(_BASE), -1, 1 << 64))
_POW_CACHE: dict[str, np.ndarray] = {}


def _powers(base: np.uint64, n: int, key: str) -> np.ndarray:
    """``base**t mod 2**64`` for t < n (cached, grown on demand)."""
    have = _POW_CACHE.get(key)
    if have is None or len(have) < n:
        size = max(n, 1 << 16)
        arr = np.full(size, base, dtype=np.uint64)
        arr[0] = 1
        with np.errstate(over="ignore"):
            have = np.cumprod(arr, dtype=np.uint64)
        _POW_CACHE[key] = have
    return have[:n]


def _rolling_hashes(payload: bytes) -> np.ndarray:
    """Hash of the 64-byte window at every offset in O(n): prefix sums over ``b[t] * B**-t``.

    ``H(i) = sum_j b[i+j] B**(63-j) = B**(i+63) * (G[i+64] - G[i])`` with
    ``G[k] = sum_{t<k} b[t] B**-t``; everything wraps mod 2**64 (B is odd, so invertible).
    """
    n = len(payload)
    b = np.frombuffer(payload, dtype=np.uint8).astype(np.uint64)
    with np.errstate(over="ignore"):
        g = np.concatenate([np.zeros(1, np.uint64), np.cumsum(b * _powers(_BINV, n, "inv"), dtype=np.uint64)])
        out: np.ndarray = (g[BLOCK:] - g[:-BLOCK]) * _powers(_BASE, n, "fwd")[BLOCK - 1:]
    return out


def _block_hashes(arr: np.ndarray) -> np.ndarray:
    """Hash of every 64-byte row; ``arr`` is (n, 64) uint8 -> (n,) uint64."""
    with np.errstate(over="ignore"):
        out: np.ndarray = (arr.astype(np.uint64) * _POWERS).sum(axis=1, dtype=np.uint64)
    return out


class WeightIndex:
    """Sorted hashes of every aligned 64-byte block of the weight files."""

    def __init__(self, files: Iterable[Path], cache: Path | None = None) -> None:
        """Index ``files``; with ``cache`` (a directory) the sorted arrays are kept on disk,
        keyed by path, size and mtime, so a relaunch skips the ~1 s rebuild."""
        self.files = [Path(f) for f in files]
        self._maps: list[mmap.mmap] = []
        for f in self.files:
            with open(f, "rb") as fh:
                self._maps.append(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
        key = hashlib.sha256(repr([(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns)
                                   for f in self.files]).encode()).hexdigest()[:24]
        path = cache / f"weights-{key}.npz" if cache is not None else None
        if path is not None and path.exists():
            with np.load(path) as z:
                self.hashes, self.offsets, self.owners = z["hashes"], z["offsets"], z["owners"]
            return
        self._build()
        if path is not None:
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
            np.savez(tmp, hashes=self.hashes, offsets=self.offsets, owners=self.owners)
            os.replace(tmp, path)

    def close(self) -> None:
        for mm in self._maps:
            mm.close()

    def _build(self) -> None:
        hashes: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        for i, mm in enumerate(self._maps):
            n = len(mm) // BLOCK
            arr = np.frombuffer(mm, dtype=np.uint8, count=n * BLOCK).reshape(n, BLOCK)
            for start in range(0, n, 1 << 18):  # chunks bound the temporary uint64 copy
                hashes.append(_block_hashes(arr[start:start + (1 << 18)]))
            owners.append(np.full(n, i, dtype=np.int32))
        allh = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        offs = np.concatenate([np.arange(len(o), dtype=np.int64) * BLOCK for o in owners]) if owners else \
            np.zeros(0, np.int64)
        own = np.concatenate(owners) if owners else np.zeros(0, np.int32)
        order = np.argsort(allh, kind="stable")
        self.hashes, self.offsets, self.owners = allh[order], offs[order], own[order]

    def __len__(self) -> int:
        return len(self.hashes)

    def find(self, payload: bytes) -> int | None:
        """Offset in ``payload`` of a confirmed 64-byte match with a weight block, or None."""
        if len(payload) < BLOCK or len(self.hashes) == 0:
            return None
        h = _rolling_hashes(payload)
        order = np.argsort(h, kind="stable")  # sorted queries make searchsorted cache-friendly
        hs = h[order]
        pos = np.searchsorted(self.hashes, hs)
        pos[pos >= len(self.hashes)] = len(self.hashes) - 1
        for k in np.nonzero(self.hashes[pos] == hs)[0]:
            off, j = int(order[k]), int(pos[k])
            while j < len(self.hashes) and self.hashes[j] == hs[k]:
                src = self._maps[int(self.owners[j])]
                o = int(self.offsets[j])
                if src[o:o + BLOCK] == payload[off:off + BLOCK]:
                    return off
                j += 1
        return None


def _b64_decode(tok: bytes, drop: int) -> bytes:
    """Decode ``tok`` (either alphabet, unpadded) after dropping ``drop`` leading characters."""
    t = tok[drop:].translate(_URLSAFE)
    if len(t) % 4 == 1:  # a lone trailing character carries no whole byte
        t = t[:-1]
    try:
        return base64.b64decode(t + b"=" * (-len(t) % 4))
    except (binascii.Error, ValueError):
        return b""


def decoded_layers(data: bytes, min_b64: int = B64_MIN, min_hex: int = HEX_MIN) -> list[tuple[str, bytes]]:
    """``data`` and its base64-, hex- and percent-decoded layers.

    base64: every run of >= ``min_b64`` characters of the standard or urlsafe alphabet, decoded
    at each of the 4 alignments; hex: every run of hex digits (whitespace and ``:`` between
    digits ignored) of >= ``min_hex`` bytes, decoded at both alignments. Within one alignment
    the decoded runs are concatenated; alignments are separated by a newline.
    """
    layers = [("plain", data)]
    b64 = [m.group() for m in _b64_run(min_b64).finditer(data)]
    if b64:
        layers.append(("base64", b"\n".join(b"".join(_b64_decode(t, d) for t in b64) for d in range(4))))
    runs = [_HEX_SEP.sub(b"", m.group()) for m in _HEX_RUN.finditer(data)]
    hx = [r for r in runs if len(r) >= 2 * min_hex]
    if hx:
        layers.append(("hex", b"\n".join(
            b"".join(bytes.fromhex(r[a:a + (len(r) - a) // 2 * 2].decode()) for r in hx) for a in (0, 1))))
    if b"%" in data:
        layers.append(("percent", urllib.parse.unquote_to_bytes(data)))
    return layers


def extract_leaves(body: object, path: str = "", keys: bool = True) -> list[tuple[str, bytes]]:
    """Every str/bytes leaf of a message body with its key path (each path is its own stream),
    in wire order; ``keys=False`` leaves out map keys."""
    if isinstance(body, bytes):
        return [(path, body)]
    if isinstance(body, str):
        return [(path, body.encode("utf-8", "surrogatepass"))]
    out: list[tuple[str, bytes]] = []
    if isinstance(body, dict):
        for k, v in body.items():
            if keys:
                out += extract_leaves(k, f"{path}/key", keys)
            out += extract_leaves(v, f"{path}/{k}", keys)
    elif isinstance(body, (list, tuple)):
        for i, v in enumerate(body):
            out += extract_leaves(v, f"{path}[{i}]", keys)
    return out


def extract_bytes(body: object) -> bytes:
    """All leaves joined by newlines."""
    return b"\n".join(b for _, b in extract_leaves(body))


@dataclass
class DetectorSet:
    """All detectors with per-stream carry-over, plus a joint (cross-leaf, cross-port) canary scan."""

    canaries: tuple[bytes, ...]
    weights: WeightIndex | None
    entropy_threshold: float
    carry: dict[str, bytes] = field(default_factory=dict)
    joint_carry: dict[str, bytes] = field(default_factory=dict)
    """Tails of the joined leaves of earlier messages (``all``: with map keys, ``values``: without)."""

    @property
    def window(self) -> int:
        return max([2 * BLOCK - 1, *(len(c) for c in self.canaries)])

    @property
    def joint_window(self) -> int:
        """Bytes of joint carry-over (+1): room for a canary hex-encoded with 1-byte separators."""
        return 3 * max((len(c) for c in self.canaries), default=0)

    @property
    def min_runs(self) -> tuple[int, int]:
        """(base64 characters, hex bytes) a run needs to be decoded; short canaries lower both."""
        short = min((len(c) for c in self.canaries if c), default=0)
        if not short:
            return B64_MIN, HEX_MIN
        return max(4, min(B64_MIN, math.ceil(4 * short / 3) - 2)), max(2, min(HEX_MIN, short))

    def _layers(self, data: bytes) -> list[tuple[str, bytes]]:
        b64, hx = self.min_runs
        return decoded_layers(data, b64, hx)

    def scan(self, stream: str, data: bytes) -> list[Detection]:
        """Scan ``data`` (with the stream's carry-over); return every detection, most severe first."""
        prev = self.carry.get(stream, b"")
        joined = prev + data
        self.carry[stream] = joined[-(self.window - 1):] if self.window > 1 else b""
        found: list[Detection] = []
        for layer, buf in self._layers(joined):
            for c in self.canaries:
                if c and c in buf:
                    found.append(Detection("canary", "canary", f"canary in {layer} layer"))
            if self.weights is not None:
                off = self.weights.find(buf)
                if off is not None:
                    found.append(Detection("weight_fingerprint", "weights",
                                           f"64-byte weight block at offset {off} of the {layer} layer"))
            for rx in _SECRETS:
                if rx.search(buf):
                    found.append(Detection("detector_score", "secrets", f"secret pattern in {layer} layer"))
        if len(data) >= 256:
            step = 256
            worst = max(shannon_entropy(data[i:i + step]) for i in range(0, len(data) - step + 1, step))
            if worst > self.entropy_threshold:
                found.append(Detection("detector_score", "entropy", f"entropy {worst:.2f} bits/byte"))
        return _by_severity(found)

    def _scan_joint(self, body: object, leaves: list[tuple[str, bytes]]) -> list[Detection]:
        """Canaries split across the leaves of ``body`` or across messages/ports (joint carry).

        Canaries inside one leaf are :meth:`scan`'s; here only the junctions are looked at:
        the running tail (``joint_window - 1`` bytes: earlier messages, then earlier leaves)
        followed by the head of each leaf, once with map keys and once without, and the tails
        of earlier messages followed by the head of *any* leaf of this one.
        """
        k = self.joint_window - 1
        if k <= 0:
            return []
        targets: dict[bytes, str] = {}
        prev = dict(self.joint_carry)
        for name, seq in (("all", leaves), ("values", extract_leaves(body, keys=False))):
            tail = prev.get(name, b"")
            for i, (_, data) in enumerate(seq):
                if tail:
                    targets.setdefault(tail + data[:k], "across fields" if i else "across messages")
                tail = (tail + data)[-k:]
            self.joint_carry[name] = tail
        for tail in set(prev.values()):
            for _, data in leaves:
                targets.setdefault(tail + data[:k], "across messages")
        for buf, where in targets.items():
            for layer, dec in self._layers(buf):
                if any(c and c in dec for c in self.canaries):
                    return [Detection("canary", "canary", f"canary split {where} in {layer} layer")]
        return []

    def scan_message(self, port: str, body: object) -> list[Detection]:
        """Scan one message: every leaf on its own stream (``port:path``), then the joint canary
        scan; one detection per (trigger, detector), most severe first. A message with detections
        is not delivered, so it leaves every carry-over as it was."""
        saved = dict(self.carry), dict(self.joint_carry)
        leaves = extract_leaves(body)
        found: list[Detection] = []
        for path, data in leaves:
            found += self.scan(f"{port}:{path}", data)
        joint = self._scan_joint(body, leaves)  # always run: it advances the joint carry-over
        if not any(d.trigger == "canary" for d in found):
            found += joint
        if found:
            self.carry, self.joint_carry = saved
        first: dict[tuple[str, str], Detection] = {}
        for d in found:  # one per detector: the first layer (plain before decoded) that saw it
            first.setdefault((d.trigger, d.detector), d)
        return _by_severity(list(first.values()))


_SEVERITY = {"weight_fingerprint": 0, "canary": 1, "detector_score": 2}


def _by_severity(found: list[Detection]) -> list[Detection]:
    return sorted(found, key=lambda d: _SEVERITY[d.trigger])


def entropy_bits(n: int) -> float:
    """Maximum entropy of an n-byte window (log2 of min(n, 256)); used to explain thresholds."""
    return math.log2(min(n, 256)) if n else 0.0
