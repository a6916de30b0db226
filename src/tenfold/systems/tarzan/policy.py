"""Serving a trained policy: checkpoints and a Unix-socket IPC (spec §2.4, §3).

Every 50 ms the sender sends the 20×12 state window and gets a target in bits per second; a
sender that hears nothing within 25 ms keeps GCC's target (the client returns None).

Wire format (design choice of the spec): request ``b"TZ1"`` + u16 rows + u16 cols + rows·cols
little-endian float32; reply ``b"\\x00"`` + u32 bps, or ``b"\\x01"`` + u16 length + UTF-8 error
text. A malformed request gets an error reply and the server keeps serving; it counts them.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from tenfold.core.assets import atomic_path
from tenfold.errors import TenfoldError
from tenfold.systems.tarzan.features import FEATURE_NAMES, WINDOW, action_to_bps

__all__ = ["CheckpointError", "Policy", "PolicyClient", "PolicyServer", "serve_stdio"]

_MAGIC = b"TZ1"
_HEADER = struct.Struct("<3sHH")
_FORMAT = "tarzan.policy/1"


class CheckpointError(TenfoldError):
    """A checkpoint that is missing, damaged or of another format."""


@dataclass
class Policy:
    """A trained actor that maps a (20, 12) window to a target bitrate."""

    algo: str
    network: Any  # GaussianActor | DeterministicActor (torch stays out of the import path)

    def act(self, window: np.ndarray) -> int:
        import torch

        if window.shape != (WINDOW, len(FEATURE_NAMES)):
            raise CheckpointError(f"window shape {window.shape} != ({WINDOW}, {len(FEATURE_NAMES)})")
        with torch.no_grad():
            a = float(self.network.act(torch.tensor(window, dtype=torch.float32)[None])[0, 0])  # copies
        return int(action_to_bps(a))

    def save(self, path: Path) -> Path:
        import torch

        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save({"format": _FORMAT, "algo": self.algo, "state_dict": self.network.state_dict()}, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        import torch

        from tenfold.systems.tarzan.models import DeterministicActor, GaussianActor

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged files
            raise CheckpointError(f"checkpoint {path} is unreadable: {exc}") from None
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise CheckpointError(f"checkpoint {path} is not a {_FORMAT} file")
        net = DeterministicActor() if blob["algo"] == "bc" else GaussianActor()
        try:
            net.load_state_dict(blob["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {path} does not fit the {blob['algo']} network: {exc}") from None
        net.eval()
        return cls(str(blob["algo"]), net)


def _decode_request(buf: bytes) -> np.ndarray:
    magic, rows, cols = _HEADER.unpack_from(buf)
    if magic != _MAGIC:
        raise ValueError(f"bad magic {magic!r}, expected {_MAGIC!r}")
    if (rows, cols) != (WINDOW, len(FEATURE_NAMES)):
        raise ValueError(f"window is {rows}x{cols}, expected {WINDOW}x{len(FEATURE_NAMES)}")
    values = np.frombuffer(buf, dtype="<f4", count=rows * cols, offset=_HEADER.size)
    if not np.all(np.isfinite(values)):
        raise ValueError("window holds NaN or infinity")
    return values.reshape(rows, cols)


def _error_reply(msg: str) -> bytes:
    data = msg.encode()[:65535]
    return b"\x01" + struct.pack("<H", len(data)) + data


class _Handler(socketserver.StreamRequestHandler):
    server: PolicyServer

    def handle(self) -> None:
        while True:
            head = self.rfile.read(_HEADER.size)
            if len(head) < _HEADER.size:
                if head:
                    self.server.malformed += 1
                return
            magic, rows, cols = _HEADER.unpack(head)
            body = self.rfile.read(rows * cols * 4) if magic == _MAGIC and rows * cols <= 4096 else b""
            try:
                window = _decode_request(head + body)
                reply = b"\x00" + struct.pack("<I", self.server.policy.act(window))
                self.server.served += 1
            except ValueError as exc:
                self.server.malformed += 1
                reply = _error_reply(str(exc))
                self.wfile.write(reply)
                return  # the stream may be out of step: close it, keep the server
            self.wfile.write(reply)


class PolicyServer(socketserver.ThreadingUnixStreamServer):
    """Serves a :class:`Policy` on a Unix socket; ``start()`` runs it on a daemon thread."""

    daemon_threads = True

    def __init__(self, policy: Policy, socket_path: Path) -> None:
        self.policy = policy
        self.served = 0
        self.malformed = 0
        path = Path(socket_path)
        if path.exists():
            path.unlink()
        super().__init__(str(path), _Handler)
        self._thread: threading.Thread | None = None

    def start(self) -> PolicyServer:
        self._thread = threading.Thread(target=self.serve_forever, name="tarzan-policy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        Path(str(self.server_address)).unlink(missing_ok=True)


class PolicyClient:
    """The sender's side: ``act`` returns the policy's bps, or None after ``timeout_ms``."""

    def __init__(self, socket_path: Path, timeout_ms: float = 25.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout_ms = timeout_ms
        self._sock: socket.socket | None = None
        self.timeouts = 0

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout_ms / 1000.0)
            try:
                sock.connect(self.socket_path)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def act(self, window: np.ndarray) -> int | None:
        rows, cols = window.shape
        payload = _HEADER.pack(_MAGIC, rows, cols) + np.ascontiguousarray(window, "<f4").tobytes()
        try:
            sock = self._connect()
            sock.sendall(payload)
            status = self._recv(sock, 1)
            if status == b"\x00":
                return int(struct.unpack("<I", self._recv(sock, 4))[0])
            (n,) = struct.unpack("<H", self._recv(sock, 2))
            raise CheckpointError(f"policy server refused the window: {self._recv(sock, n).decode()}")
        except (TimeoutError, OSError):
            self.timeouts += 1
            self.close()
            return None

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            part = sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("policy server closed the connection")
            buf += part
        return buf

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def serve_stdio(policy: Policy, lines: Iterable[str], out: IO[str]) -> int:
    """``--stdio``: one JSON object per line, ``{"window": [[...] x 20]}`` -> ``{"bps": n}``."""
    errors = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            window = np.asarray(json.loads(line)["window"], dtype=np.float32)
            if window.shape != (WINDOW, len(FEATURE_NAMES)) or not np.all(np.isfinite(window)):
                raise ValueError(f"window must be {WINDOW}x{len(FEATURE_NAMES)} finite numbers")
            out.write(json.dumps({"bps": policy.act(window)}) + "\n")
        except (ValueError, KeyError, TypeError) as exc:
            errors += 1
            out.write(json.dumps({"error": str(exc) or type(exc).__name__}) + "\n")
        out.flush()
    return errors
