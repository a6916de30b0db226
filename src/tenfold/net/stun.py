"""STUN messages (RFC 8489, which obsoletes RFC 5389) for ICE-lite connectivity checks.

What an SFU needs from STUN is small but exact: parse a Binding request, verify its
MESSAGE-INTEGRITY (HMAC-SHA1 keyed by the ICE password, RFC 8489 section 14.5) and
FINGERPRINT (CRC-32 xor 0x5354554E, section 14.7), and answer with a success response
carrying XOR-MAPPED-ADDRESS (section 14.2) plus its own integrity and fingerprint. Both
integrity and fingerprint cover the message *as if* its length field already counted the
attribute being computed, which is why they are computed here from encoded bytes.

Attributes are kept as (type, value) pairs in wire order; values are padded with zeros to
32-bit words on encoding (the RFC lets receivers ignore padding contents, and every
implementation we interoperate with writes zeros), so decoding then encoding is exact.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
import zlib
from dataclasses import dataclass, replace

from tenfold.core.api import api
from tenfold.errors import DecodeError

__all__ = [
    "BINDING",
    "COOKIE",
    "StunAttr",
    "StunClass",
    "StunMessage",
    "binding_error",
    "binding_success",
    "is_stun",
    "long_term_key",
    "pack_error_code",
    "pack_xor_address",
    "unpack_error_code",
    "unpack_xor_address",
]

COOKIE = 0x2112A442
BINDING = 0x001
_FINGERPRINT_XOR = 0x5354554E
_HEADER = struct.Struct("!HHI12s")


class StunClass:
    """The two class bits of the message type (RFC 8489 section 5)."""

    REQUEST = 0
    INDICATION = 1
    SUCCESS = 2
    ERROR = 3


class StunAttr:
    """Attribute types used by ICE (RFC 8489 section 18.3, RFC 8445 section 16.1)."""

    MAPPED_ADDRESS = 0x0001
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    XOR_MAPPED_ADDRESS = 0x0020
    PRIORITY = 0x0024
    USE_CANDIDATE = 0x0025
    SOFTWARE = 0x8022
    FINGERPRINT = 0x8028
    ICE_CONTROLLED = 0x8029
    ICE_CONTROLLING = 0x802A


def is_stun(data: bytes) -> bool:
    """RFC 7983 demultiplexing: first byte 0-3 and the magic cookie at bytes 4-7."""
    return len(data) >= 20 and data[0] < 4 and int.from_bytes(data[4:8], "big") == COOKIE


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """RFC 8489 section 9.2.2 long-term credential key (MD5 variant)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def _pad(n: int) -> int:
    return -n % 4


@api(stability="beta")
@dataclass(frozen=True)
class StunMessage:
    """A STUN message; ``attributes`` are (type, unpadded value) in wire order."""

    method: int
    message_class: int
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        if len(self.transaction_id) != 12:
            raise DecodeError(f"STUN transaction id is {len(self.transaction_id)} bytes; it must be 12")
        if not 0 <= self.method <= 0xFFF or self.message_class not in (0, 1, 2, 3):
            raise DecodeError(f"STUN method {self.method:#x} / class {self.message_class}; allowed 0..0xfff / 0..3")

    # -- attributes -------------------------------------------------------------------------

    def get(self, attr: int) -> bytes | None:
        """The value of the first attribute of type ``attr``, or None."""
        for kind, value in self.attributes:
            if kind == attr:
                return value
        return None

    def with_attribute(self, attr: int, value: bytes) -> StunMessage:
        return replace(self, attributes=(*self.attributes, (attr, value)))

    @property
    def xor_mapped_address(self) -> tuple[str, int] | None:
        value = self.get(StunAttr.XOR_MAPPED_ADDRESS)
        return None if value is None else unpack_xor_address(value, self.transaction_id)

    def with_integrity(self, key: bytes) -> StunMessage:
        """Append MESSAGE-INTEGRITY: HMAC-SHA1 over the message so far, length counting it."""
        prefix = self._encode(self.attributes, extra=24)
        return self.with_attribute(StunAttr.MESSAGE_INTEGRITY, hmac.new(key, prefix, hashlib.sha1).digest())

    def with_fingerprint(self) -> StunMessage:
        """Append FINGERPRINT: CRC-32 of the message so far, length counting it, xor 0x5354554E."""
        prefix = self._encode(self.attributes, extra=8)
        crc = (zlib.crc32(prefix) ^ _FINGERPRINT_XOR) & 0xFFFFFFFF
        return self.with_attribute(StunAttr.FINGERPRINT, struct.pack("!I", crc))

    def check_integrity(self, key: bytes) -> bool:
        """True when MESSAGE-INTEGRITY is present and matches ``key``."""
        for i, (kind, value) in enumerate(self.attributes):
            if kind == StunAttr.MESSAGE_INTEGRITY:
                prefix = self._encode(self.attributes[:i], extra=24)
                return hmac.compare_digest(value, hmac.new(key, prefix, hashlib.sha1).digest())
        return False

    def check_fingerprint(self) -> bool:
        """True when FINGERPRINT is the last attribute and matches the message."""
        if not self.attributes or self.attributes[-1][0] != StunAttr.FINGERPRINT:
            return False
        prefix = self._encode(self.attributes[:-1], extra=8)
        return self.attributes[-1][1] == struct.pack("!I", (zlib.crc32(prefix) ^ _FINGERPRINT_XOR) & 0xFFFFFFFF)

    # -- wire format ------------------------------------------------------------------------

    @property
    def message_type(self) -> int:
        m, c = self.method, self.message_class
        return (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)

    def _encode(self, attributes: tuple[tuple[int, bytes], ...], extra: int = 0) -> bytes:
        body = bytearray()
        for kind, value in attributes:
            if len(value) > 0xFFFF:
                raise DecodeError(f"STUN attribute {kind:#06x} value is {len(value)} bytes; at most 65535 fit")
            body += struct.pack("!HH", kind, len(value)) + value + bytes(_pad(len(value)))
        return _HEADER.pack(self.message_type, len(body) + extra, COOKIE, self.transaction_id) + body

    def encode(self) -> bytes:
        return self._encode(self.attributes)

    @classmethod
    def decode(cls, data: bytes) -> StunMessage:
        if len(data) < 20:
            raise DecodeError(f"STUN message is {len(data)} bytes; the header needs 20")
        mtype, length, cookie, tid = _HEADER.unpack_from(data)
        if mtype & 0xC000:
            raise DecodeError(f"STUN message type {mtype:#06x} has its top two bits set; they must be zero")
        if cookie != COOKIE:
            raise DecodeError(f"STUN magic cookie is {cookie:#010x}; it must be {COOKIE:#010x}")
        if length % 4 or 20 + length != len(data):
            raise DecodeError(f"STUN length field says {length} bytes but {len(data) - 20} follow the header")
        attrs: list[tuple[int, bytes]] = []
        pos = 20
        while pos < len(data):
            if pos + 4 > len(data):
                raise DecodeError(f"STUN attribute header at byte {pos} is truncated")
            kind, alen = struct.unpack_from("!HH", data, pos)
            end = pos + 4 + alen
            if end + _pad(alen) > len(data):
                raise DecodeError(f"STUN attribute {kind:#06x} at byte {pos} claims {alen} bytes, past the message end")
            attrs.append((kind, bytes(data[pos + 4:end])))
            pos = end + _pad(alen)
        method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
        klass = ((mtype >> 4) & 1) | ((mtype >> 7) & 2)
        return cls(method, klass, bytes(tid), tuple(attrs))


def pack_xor_address(address: tuple[str, int], transaction_id: bytes) -> bytes:
    """XOR-MAPPED-ADDRESS value (RFC 8489 section 14.2) for an IPv4 or IPv6 address."""
    ip = ipaddress.ip_address(address[0])
    port = address[1] ^ (COOKIE >> 16)
    mask = struct.pack("!I", COOKIE) + (transaction_id if ip.version == 6 else b"")
    raw = bytes(a ^ b for a, b in zip(ip.packed, mask, strict=True))
    return struct.pack("!BBH", 0, 1 if ip.version == 4 else 2, port) + raw


def unpack_xor_address(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    """(ip, port) from an XOR-MAPPED-ADDRESS value."""
    if len(value) < 4:
        raise DecodeError(f"STUN XOR-MAPPED-ADDRESS is {len(value)} bytes; it needs at least 4")
    family = value[1]
    size = {1: 4, 2: 16}.get(family)
    if size is None:
        raise DecodeError(f"STUN address family is {family:#04x}; allowed 0x01 (IPv4) or 0x02 (IPv6)")
    if len(value) != 4 + size:
        raise DecodeError(f"STUN XOR-MAPPED-ADDRESS is {len(value)} bytes; family {family} needs {4 + size}")
    port = struct.unpack_from("!H", value, 2)[0] ^ (COOKIE >> 16)
    mask = struct.pack("!I", COOKIE) + (transaction_id if size == 16 else b"")
    raw = bytes(a ^ b for a, b in zip(value[4:], mask, strict=True))
    return str(ipaddress.ip_address(raw)), port


def pack_error_code(code: int, reason: str) -> bytes:
    """ERROR-CODE value (RFC 8489 section 14.8): class (hundreds) and number, then reason."""
    if not 300 <= code <= 699:
        raise DecodeError(f"STUN error code {code}; allowed 300..699")
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()


def unpack_error_code(value: bytes) -> tuple[int, str]:
    if len(value) < 4:
        raise DecodeError(f"STUN ERROR-CODE is {len(value)} bytes; it needs at least 4")
    return (value[2] & 0x07) * 100 + value[3], value[4:].decode(errors="replace")


def binding_success(request: StunMessage, address: tuple[str, int], key: bytes) -> StunMessage:
    """The ICE-lite answer to a Binding request: XOR-MAPPED-ADDRESS, integrity, fingerprint."""
    reply = StunMessage(BINDING, StunClass.SUCCESS, request.transaction_id)
    reply = reply.with_attribute(StunAttr.XOR_MAPPED_ADDRESS, pack_xor_address(address, request.transaction_id))
    return reply.with_integrity(key).with_fingerprint()


def binding_error(request: StunMessage, code: int, reason: str) -> StunMessage:
    """An error response, e.g. 401 for a request whose MESSAGE-INTEGRITY does not verify."""
    reply = StunMessage(BINDING, StunClass.ERROR, request.transaction_id)
    return reply.with_attribute(StunAttr.ERROR_CODE, pack_error_code(code, reason)).with_fingerprint()
