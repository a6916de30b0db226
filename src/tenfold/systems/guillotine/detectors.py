"""Streaming output detectors (spec section 2, pipeline step 5).

Each port stream keeps the last ``W - 1`` bytes of what it sent (``W`` = the longest pattern),
so a canary split across two messages is still seen. Every payload is also scanned in its
base64-, hex- and percent-decoded layers.

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
_B64 = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2}){8,}")


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


def decoded_layers(data: bytes) -> list[tuple[str, bytes]]:
    layers = [("plain", data)]
    b64 = [m.group() for m in _B64.finditer(data)]
    if b64:
        dec = bytearray()
        for tok in b64:
            for fn in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    dec += fn(tok + b"=" * (-len(tok) % 4))
                    break
                except (binascii.Error, ValueError):
                    continue
        layers.append(("base64", bytes(dec)))
    hx = [m.group() for m in _HEX.finditer(data)]
    if hx:
        layers.append(("hex", b"".join(bytes.fromhex(t.decode()) for t in hx)))
    if b"%" in data:
        layers.append(("percent", urllib.parse.unquote_to_bytes(data)))
    return layers


def extract_leaves(body: object, path: str = "") -> list[tuple[str, bytes]]:
    """Every str/bytes leaf of a message body with its key path (each path is its own stream)."""
    if isinstance(body, bytes):
        return [(path, body)]
    if isinstance(body, str):
        return [(path, body.encode("utf-8", "surrogatepass"))]
    out: list[tuple[str, bytes]] = []
    if isinstance(body, dict):
        for k, v in body.items():
            out += extract_leaves(k, f"{path}/key")
            out += extract_leaves(v, f"{path}/{k}")
    elif isinstance(body, (list, tuple)):
        for i, v in enumerate(body):
            out += extract_leaves(v, f"{path}[{i}]")
    return out


def extract_bytes(body: object) -> bytes:
    """All leaves joined by newlines."""
    return b"\n".join(b for _, b in extract_leaves(body))


@dataclass
class DetectorSet:
    """All detectors with per-stream carry-over."""

    canaries: tuple[bytes, ...]
    weights: WeightIndex | None
    entropy_threshold: float
    carry: dict[str, bytes] = field(default_factory=dict)

    @property
    def window(self) -> int:
        return max([2 * BLOCK - 1, *(len(c) for c in self.canaries)])

    def scan(self, stream: str, data: bytes) -> list[Detection]:
        """Scan ``data`` (with the stream's carry-over); return every detection, most severe first."""
        prev = self.carry.get(stream, b"")
        joined = prev + data
        self.carry[stream] = joined[-(self.window - 1):] if self.window > 1 else b""
        found: list[Detection] = []
        for layer, buf in decoded_layers(joined):
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
        order = {"weight_fingerprint": 0, "canary": 1, "detector_score": 2}
        return sorted(found, key=lambda d: order[d.trigger])


def entropy_bits(n: int) -> float:
    """Maximum entropy of an n-byte window (log2 of min(n, 256)); used to explain thresholds."""
    return math.log2(min(n, 256)) if n else 0.0
