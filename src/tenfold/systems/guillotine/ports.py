"""Port framing and the in-sandbox client (spec section 2, "Ports").

A frame is a 4-byte big-endian length followed by msgpack ``{v:1, port, id, op, body}``;
a reply is ``{v, id, ok, body}`` or ``{v, id, ok: false, error: {type, message}}``.
Ports: ``io`` (prompts in, completions out), ``http`` (allowlisted egress), ``fs``
(quota-capped artifacts) and ``tool`` (registered callables). Inside the sandbox g-init
pre-connects the socket before seccomp forbids ``connect``; the agent finds the connected fd
in ``GUILLOTINE_PORT_FD`` (:meth:`PortClient.from_env`).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from tenfold.systems.guillotine.errors import FrameTooLarge, MalformedMessage, PortError, SchemaError, UnknownPort

__all__ = ["PORTS", "Message", "PortClient", "decode_message", "read_frame", "write_frame"]

PORTS = ("io", "http", "fs", "tool")
_OPS = {"io": ("next", "reply"), "http": ("get", "post"), "fs": ("write", "read"), "tool": ("call",)}
_HEADER = struct.Struct(">I")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed the port")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket, max_bytes: int) -> bytes:
    """One frame's payload; :class:`FrameTooLarge` (reading the first 4 KB for the audit hash) past the cap."""
    (n,) = _HEADER.unpack(_recv_exact(sock, 4))
    if n > max_bytes:
        head = sock.recv(min(n, 4096))
        raise FrameTooLarge(f"frame of {n} bytes exceeds the cap of {max_bytes}", head)
    return _recv_exact(sock, n)


def write_frame(sock: socket.socket, obj: Any) -> None:
    data = msgpack.packb(obj, use_bin_type=True)
    sock.sendall(_HEADER.pack(len(data)) + data)


@dataclass(frozen=True)
class Message:
    port: str
    id: int
    op: str
    body: Any


def decode_message(payload: bytes) -> Message:
    """msgpack, then schema: MalformedMessage, SchemaError, UnknownPort."""
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise MalformedMessage(f"not msgpack: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise SchemaError("message must be a map")
    if obj.get("v") != 1:
        raise SchemaError(f"unsupported version {obj.get('v')!r}; expected 1")
    if set(obj) != {"v", "port", "id", "op", "body"}:
        raise SchemaError(f"message keys {sorted(map(str, obj))} != ['body', 'id', 'op', 'port', 'v']")
    port, mid, op = obj["port"], obj["id"], obj["op"]
    if not isinstance(mid, int) or isinstance(mid, bool) or mid < 0:
        raise SchemaError(f"id must be a non-negative integer, got {mid!r}")
    if port not in PORTS:
        raise UnknownPort(f"unknown port {port!r}; known: {', '.join(PORTS)}")
    if op not in _OPS[port]:
        raise SchemaError(f"port {port!r} has no op {op!r}; known: {', '.join(_OPS[port])}")
    return Message(port, mid, op, obj["body"])


class PortClient:
    """The sandbox side: synchronous request/reply over the pre-connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._next = 0

    @classmethod
    def from_env(cls) -> PortClient:
        fd = int(os.environ["GUILLOTINE_PORT_FD"])
        return cls(socket.socket(fileno=fd))

    def call(self, port: str, op: str, body: Any) -> Any:
        """Send one message and return the reply body; a refusal raises :class:`PortError` with its type."""
        self._next += 1
        write_frame(self.sock, {"v": 1, "port": port, "id": self._next, "op": op, "body": body})
        rep = msgpack.unpackb(read_frame(self.sock, 64 << 20), raw=False)
        if rep.get("ok"):
            return rep.get("body")
        err = rep.get("error") or {}
        exc = PortError(f"{err.get('type', 'PortError')}: {err.get('message', '')}")
        exc.code = str(err.get("type", "port_error"))
        raise exc

    def send_raw(self, data: bytes) -> Any:
        """Protocol abuse helper for the red team: send ``data`` as one frame, return the raw reply."""
        self.sock.sendall(_HEADER.pack(len(data)) + data)
        return msgpack.unpackb(read_frame(self.sock, 64 << 20), raw=False)
