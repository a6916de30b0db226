"""Ed25519 keys and canonical JSON: the signing primitives of audit, levels, quorum and attestation.

Private keys live only in the deployment's state directory (mode 0700, files 0600), which
is never mounted into the sandbox. A key is named by its hex public key (its ``key_id``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

__all__ = ["SigningKey", "canonical", "sha256_hex", "verify_signature", "write_private"]


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8. Everything signed goes through this."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its hex public key."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        raw = Path(path).read_bytes()
        return cls(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(raw.decode().strip())))

    @property
    def key_id(self) -> str:
        """Hex of the 32-byte raw public key."""
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, data: bytes) -> str:
        """Hex signature over ``data``."""
        return self.private.sign(data).hex()

    def private_bytes_hex(self) -> str:
        return self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()

    def save(self, path: str | Path) -> Path:
        return write_private(Path(path), self.private_bytes_hex().encode())


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` with mode 0600 atomically (tmp + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def verify_signature(key_id: str, data: bytes, sig_hex: str) -> bool:
    """True when ``sig_hex`` is a valid Ed25519 signature of ``data`` by ``key_id``."""
    try:
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_id))
        pub.verify(bytes.fromhex(sig_hex), data)
    except (ValueError, InvalidSignature):
        return False
    return True
