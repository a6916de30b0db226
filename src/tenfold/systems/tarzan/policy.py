"""Serving a trained policy: checkpoints and a Unix-socket IPC (spec §2.4, §3).

Every 50 ms the sender sends the 20×12 state window and gets a target in bits per second; a
sender that hears nothing within 25 ms keeps GCC's target (the client returns None).

Wire format (design choice of the spec): request ``b"TZ1"`` + u16 rows + u16 cols + rows·cols
little-endian float32; reply ``b"\\x00"`` + u32 bps, or ``b"\\x01"`` + u16 length + UTF-8 error
text. A malformed request gets an error reply and the server keeps serving; it counts them.

A checkpoint records the feature schema it was trained under (names, scales and
:data:`~.features.FEATURE_SCHEMA`) and the features its algorithm zeroes
(:data:`~.features.ZEROED_FEATURES`); a policy of another schema is refused, and
:meth:`Policy.act` zeroes the same features training did.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import stat
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from tenfold.core.assets import atomic_path
from tenfold.errors import ConfigError, TenfoldError
from tenfold.systems.tarzan.config import ALGOS
from tenfold.systems.tarzan.features import (
    FEATURE_NAMES,
    FEATURE_SCALES,
    FEATURE_SCHEMA,
    WINDOW,
    action_to_bps,
    zeroed_features,
)

__all__ = ["CheckpointError", "Policy", "PolicyClient", "PolicyServer", "ProtocolError", "serve_stdio"]

_MAGIC = b"TZ1"
_HEADER = struct.Struct("<3sHH")
_FORMAT = "tarzan.policy/1"
_MAX_VALUES = 4096
"""Largest rows × cols body the server reads before refusing the frame's shape."""
_SUN_PATH_MAX = 107
"""Bytes of a Unix socket path (sockaddr_un.sun_path is 108 with its terminating NUL on Linux)."""


class CheckpointError(TenfoldError):
    """A checkpoint that is missing, damaged or of another format."""


class ProtocolError(TenfoldError):
    """The policy server refused a request (its error reply), or answered outside the protocol."""


@dataclass
class Policy:
    """A trained actor that maps a (20, 12) window to a target bitrate.

    The features its algorithm trained with zeroed (``no_prev_action``: the previous action)
    are zeroed here too, so serving and evaluation feed it what training did.
    """

    algo: str
    network: Any  # GaussianActor | DeterministicActor (torch stays out of the import path)
    _zeroed_idx: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._zeroed_idx = [FEATURE_NAMES.index(name) for name in self.zeroed_features]

    @property
    def zeroed_features(self) -> tuple[str, ...]:
        return zeroed_features(self.algo)

    def act(self, window: np.ndarray) -> int:
        import torch

        if window.shape != (WINDOW, len(FEATURE_NAMES)):
            raise CheckpointError(f"window shape {window.shape} != ({WINDOW}, {len(FEATURE_NAMES)})")
        state = torch.tensor(window, dtype=torch.float32)[None]  # (1, 20, 12), a copy
        if self._zeroed_idx:
            state[:, :, self._zeroed_idx] = 0.0
        with torch.no_grad():
            a = float(self.network.act(state)[0, 0])
        return int(action_to_bps(a))

    def save(self, path: Path) -> Path:
        import torch

        path = Path(path)
        blob = {"format": _FORMAT, "algo": self.algo, "state_dict": self.network.state_dict(),
                "feature_schema": FEATURE_SCHEMA, "features": list(FEATURE_NAMES),
                "feature_scales": list(FEATURE_SCALES), "zeroed_features": list(self.zeroed_features)}
        with atomic_path(path, durable=True) as tmp:
            torch.save(blob, tmp)
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
        schema = blob.get("feature_schema")
        if schema != FEATURE_SCHEMA:
            found = "none recorded (an older build)" if schema is None else repr(schema)
            raise CheckpointError(f"checkpoint {path}: policy file has feature schema {found}, this build expects "
                                  f"{FEATURE_SCHEMA!r}; retrain it with this build")
        if blob.get("features") != list(FEATURE_NAMES) or blob.get("feature_scales") != list(FEATURE_SCALES):
            raise CheckpointError(f"checkpoint {path}: its features {blob.get('features')!r} with scales "
                                  f"{blob.get('feature_scales')!r} differ from this build's under the same schema "
                                  f"{FEATURE_SCHEMA!r}")
        if "algo" not in blob:
            raise CheckpointError(f"checkpoint {path} has no 'algo' entry")
        algo = blob["algo"]
        if algo not in ALGOS:
            raise CheckpointError(f"checkpoint {path} names algorithm {algo!r}; known: {', '.join(ALGOS)}")
        if blob.get("zeroed_features") != list(zeroed_features(algo)):
            raise CheckpointError(f"checkpoint {path} zeroes features {blob.get('zeroed_features')!r}, but {algo} "
                                  f"trains with {list(zeroed_features(algo))!r} zeroed")
        if "state_dict" not in blob:
            raise CheckpointError(f"checkpoint {path} has no 'state_dict' entry")
        state = blob["state_dict"]
        if not isinstance(state, dict):
            raise CheckpointError(f"checkpoint {path}: 'state_dict' is a {type(state).__name__}, not a state dict")
        net = DeterministicActor() if algo == "bc" else GaussianActor()
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit the {algo} network: {exc}") from None
        net.eval()
        return cls(str(algo), net)


# -- the socket server ---------------------------------------------------------------------------


def _decode_request(buf: bytes) -> np.ndarray:
    magic, rows, cols = _HEADER.unpack_from(buf)
    if magic != _MAGIC:
        raise ValueError(f"bad magic {magic!r}, expected {_MAGIC!r}")
    if (rows, cols) != (WINDOW, len(FEATURE_NAMES)):
        raise ValueError(f"window is {rows}x{cols}, expected {WINDOW}x{len(FEATURE_NAMES)}")
    if len(buf) - _HEADER.size < rows * cols * 4:
        raise ValueError(f"truncated frame: {len(buf) - _HEADER.size} of {rows * cols * 4} body bytes")
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
        try:
            self._serve()
        except OSError:  # the client reset the connection mid-frame: nothing to answer
            return

    def _serve(self) -> None:
        while True:
            head = self.rfile.read(_HEADER.size)
            if len(head) < _HEADER.size:
                if head:
                    self.server.count(malformed=1)
                return
            magic, rows, cols = _HEADER.unpack(head)
            body = self.rfile.read(rows * cols * 4) if magic == _MAGIC and rows * cols <= _MAX_VALUES else b""
            try:
                window = _decode_request(head + body)
            except ValueError as exc:
                self.server.count(malformed=1)
                self._send(_error_reply(str(exc)))
                return  # the stream may be out of step: close it, keep the server
            bps = self.server.policy.act(window)
            self.server.count(served=1)
            if not self._send(b"\x00" + struct.pack("<I", bps)):
                return

    def _send(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
        except OSError:  # BrokenPipeError, ConnectionResetError: the client left before the reply
            return False
        return True


def _claim_socket_path(path: Path) -> None:
    """Make ``path`` free for a new server, or refuse with ConfigError.

    Only a stale socket (no server answers on it) is removed; a regular file, a directory or
    a socket with a live server behind it is never touched.
    """
    size = len(os.fsencode(path))
    if size > _SUN_PATH_MAX:
        raise ConfigError("socket", str(path), f"is {size} bytes long; a Unix socket path holds at most "
                                               f"{_SUN_PATH_MAX} (choose a shorter one, e.g. under /tmp)")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError("socket", str(path), f"its directory {parent} does not exist")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError("socket", str(path), "exists and is not a socket; refusing to replace it "
                                               "(choose another --socket path)")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # stale: left by a server that is gone
        return
    except OSError as exc:
        raise ConfigError("socket", str(path), f"is a socket that cannot be probed ({exc}); refusing to replace "
                                               "it") from None
    finally:
        probe.close()
    raise ConfigError("socket", str(path), "a policy server is already listening on it; stop that server or "
                                           "choose another --socket path")


class PolicyServer(socketserver.ThreadingUnixStreamServer):
    """Serves a :class:`Policy` on a Unix socket; ``start()`` runs it on a daemon thread.

    An existing path is replaced only when it is a stale socket (:func:`_claim_socket_path`).
    """

    daemon_threads = True

    def __init__(self, policy: Policy, socket_path: Path) -> None:
        self.policy = policy
        self.served = 0
        self.malformed = 0
        self._count_lock = threading.Lock()
        path = Path(socket_path)
        _claim_socket_path(path)
        try:
            super().__init__(str(path), _Handler)
        except OSError as exc:
            raise ConfigError("socket", str(path), f"cannot listen there: {exc.strerror or exc}") from None
        self._path = path
        self._thread: threading.Thread | None = None

    def count(self, served: int = 0, malformed: int = 0) -> None:
        """Add to the counters (handlers run on several threads)."""
        with self._count_lock:
            self.served += served
            self.malformed += malformed

    def start(self) -> PolicyServer:
        self._thread = threading.Thread(target=self.serve_forever, name="tarzan-policy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        try:
            if stat.S_ISSOCK(os.lstat(self._path).st_mode):
                self._path.unlink()
        except FileNotFoundError:
            pass


class PolicyClient:
    """The sender's side: ``act`` returns the policy's bps, or None when no reply came within
    ``timeout_ms`` of the call (one deadline for the whole request: connect, send and receive).

    An error reply raises :class:`ProtocolError`; the connection is closed first (the server
    closes its side too), so the next call starts on a fresh one.
    """

    def __init__(self, socket_path: Path, timeout_ms: float = 25.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout_ms = timeout_ms
        self._sock: socket.socket | None = None
        self.timeouts = 0

    @staticmethod
    def _arm(sock: socket.socket, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("policy server did not answer in time")
        sock.settimeout(left)

    def _connect(self, deadline: float) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._arm(sock, deadline)
                sock.connect(self.socket_path)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def act(self, window: np.ndarray) -> int | None:
        deadline = time.monotonic() + self.timeout_ms / 1000.0
        rows, cols = window.shape
        payload = _HEADER.pack(_MAGIC, rows, cols) + np.ascontiguousarray(window, "<f4").tobytes()
        try:
            sock = self._connect(deadline)
            self._arm(sock, deadline)
            sock.sendall(payload)
            status = self._recv(sock, 1, deadline)
            if status == b"\x00":
                return int(struct.unpack("<I", self._recv(sock, 4, deadline))[0])
            if status == b"\x01":
                (n,) = struct.unpack("<H", self._recv(sock, 2, deadline))
                text = self._recv(sock, n, deadline).decode(errors="replace")
                reason = f"policy server refused the window: {text}"
            else:
                reason = f"policy server replied with status byte {status!r}, expected b'\\x00' or b'\\x01'"
        except OSError:  # TimeoutError included: no answer in time, or no server
            self.timeouts += 1
            self.close()
            return None
        self.close()
        raise ProtocolError(reason)

    @classmethod
    def _recv(cls, sock: socket.socket, n: int, deadline: float) -> bytes:
        buf = b""
        while len(buf) < n:
            cls._arm(sock, deadline)
            part = sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("policy server closed the connection")
            buf += part
        return buf

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# -- JSON lines ----------------------------------------------------------------------------------

_F32_MAX = float(np.finfo(np.float32).max)


def _stdio_window(line: str) -> np.ndarray:
    msg = json.loads(line)
    if not isinstance(msg, dict) or "window" not in msg:
        raise ValueError('expected a JSON object {"window": [[12 numbers] x 20]}')
    window = np.asarray(msg["window"], dtype=np.float64)  # JSON numbers are doubles: no overflow here
    if window.shape != (WINDOW, len(FEATURE_NAMES)):
        raise ValueError(f"window must be {WINDOW}x{len(FEATURE_NAMES)} numbers, got shape {window.shape}")
    if not np.all(np.isfinite(window)) or float(np.abs(window).max()) > _F32_MAX:
        raise ValueError("window must hold finite numbers within float32's range")
    return window.astype(np.float32)


def serve_stdio(policy: Policy, lines: Iterable[str], out: IO[str]) -> int:
    """``--stdio``: one JSON object per line, ``{"window": [[...] x 20]}`` -> ``{"bps": n}``.

    A malformed line (bad JSON, nesting deeper than the parser allows, a wrong shape, values
    out of float32's range) gets ``{"error": ...}`` and is counted; serving goes on. Returns the count.
    """
    errors = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            window = _stdio_window(line)
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            errors += 1
            reply: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
        else:
            reply = {"bps": policy.act(window)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return errors
