"""STUN codec: integrity and fingerprint interop with aioice both ways, exact errors."""

from __future__ import annotations

import pytest
from aioice import stun as aioice
from hypothesis import given
from hypothesis import strategies as st

from tenfold.errors import DecodeError
from tenfold.net.demux import classify
from tenfold.net.stun import (
    BINDING,
    StunAttr,
    StunClass,
    StunMessage,
    binding_error,
    binding_success,
    long_term_key,
    pack_xor_address,
    unpack_error_code,
)

TID = bytes(range(1, 13))
KEY = b"ice-password-0123456789"


def test_aioice_request_verifies_here_field_for_field() -> None:
    msg = aioice.Message(aioice.Method.BINDING, aioice.Class.REQUEST, transaction_id=TID)
    msg.attributes["USERNAME"] = "remote:local"
    msg.attributes["PRIORITY"] = 1853817087
    msg.attributes["ICE-CONTROLLING"] = 0x1122334455667788
    msg.attributes["USE-CANDIDATE"] = None
    msg.add_message_integrity(KEY)  # also adds FINGERPRINT
    data = bytes(msg)
    ours = StunMessage.decode(data)
    assert (ours.method, ours.message_class, ours.transaction_id) == (BINDING, StunClass.REQUEST, TID)
    assert ours.get(StunAttr.USERNAME) == b"remote:local"
    assert ours.get(StunAttr.PRIORITY) == (1853817087).to_bytes(4, "big")
    assert ours.get(StunAttr.ICE_CONTROLLING) == (0x1122334455667788).to_bytes(8, "big")
    assert ours.get(StunAttr.USE_CANDIDATE) == b""
    assert ours.check_integrity(KEY)
    assert not ours.check_integrity(b"wrong")
    assert ours.check_fingerprint()
    assert ours.encode() == data
    assert classify(data) == "stun"


def test_our_response_verifies_in_aioice() -> None:
    msg = StunMessage(BINDING, StunClass.SUCCESS, TID)
    msg = msg.with_attribute(StunAttr.XOR_MAPPED_ADDRESS, pack_xor_address(("10.201.1.2", 40000), TID))
    msg = msg.with_integrity(KEY).with_fingerprint()
    data = msg.encode()
    theirs = aioice.parse_message(data)  # raises if FINGERPRINT does not match
    assert theirs.message_method == aioice.Method.BINDING
    assert theirs.message_class == aioice.Class.RESPONSE
    assert theirs.transaction_id == TID
    assert theirs.attributes["XOR-MAPPED-ADDRESS"] == ("10.201.1.2", 40000)
    assert theirs.check_message_integrity(KEY)
    assert msg.xor_mapped_address == ("10.201.1.2", 40000)
    # aioice writes the same message byte for byte
    again = aioice.Message(aioice.Method.BINDING, aioice.Class.RESPONSE, transaction_id=TID)
    again.attributes["XOR-MAPPED-ADDRESS"] = ("10.201.1.2", 40000)
    again.add_message_integrity(KEY)
    assert bytes(again) == data


def test_ipv6_xor_address_round_trip() -> None:
    msg = StunMessage(BINDING, StunClass.SUCCESS, TID).with_attribute(
        StunAttr.XOR_MAPPED_ADDRESS, pack_xor_address(("fd00::1:2", 5000), TID))
    theirs = aioice.parse_message(msg.encode())
    assert theirs.attributes["XOR-MAPPED-ADDRESS"] == ("fd00::1:2", 5000)
    assert msg.xor_mapped_address == ("fd00::1:2", 5000)


def test_tampered_message_fails_both_checks() -> None:
    data = bytearray(StunMessage(BINDING, StunClass.REQUEST, TID, ((StunAttr.USERNAME, b"a:b"),))
                     .with_integrity(KEY).with_fingerprint().encode())
    data[25] ^= 1  # inside USERNAME
    msg = StunMessage.decode(bytes(data))
    assert not msg.check_integrity(KEY)
    assert not msg.check_fingerprint()


def test_long_term_key_is_rfc_md5() -> None:
    assert long_term_key("user", "realm", "pass").hex() == "8493fbc53ba582fb4c044c456bdc40eb"


# Any attribute but the two that sign the message: a message that already holds them is checked
# against its first MESSAGE-INTEGRITY (RFC 5389 section 15.4), as the next test pins down.
_PLAIN_ATTR = st.integers(0, 0xFFFF).filter(lambda t: t not in (StunAttr.MESSAGE_INTEGRITY, StunAttr.FINGERPRINT))


def test_integrity_is_checked_against_the_first_message_integrity() -> None:
    forged = StunMessage(BINDING, StunClass.REQUEST, TID, ((StunAttr.MESSAGE_INTEGRITY, b""),))
    signed = forged.with_integrity(KEY).with_fingerprint()
    back = StunMessage.decode(signed.encode())
    assert back.check_fingerprint()
    assert not back.check_integrity(KEY)


@given(method=st.integers(0, 0xFFF), klass=st.integers(0, 3), tid=st.binary(min_size=12, max_size=12),
       attrs=st.lists(st.tuples(_PLAIN_ATTR, st.binary(max_size=40)), max_size=5))
def test_round_trip_invariant(method: int, klass: int, tid: bytes, attrs: list[tuple[int, bytes]]) -> None:
    msg = StunMessage(method, klass, tid, tuple(attrs)).with_integrity(KEY).with_fingerprint()
    data = msg.encode()
    back = StunMessage.decode(data)
    assert back == msg
    assert back.encode() == data
    assert back.check_integrity(KEY) and back.check_fingerprint()


@pytest.mark.parametrize(("data", "reason"), [
    (bytes(19), "STUN message is 19 bytes; the header needs 20"),
    (b"\xc0\x01\x00\x00\x21\x12\xa4\x42" + TID, "STUN message type 0xc001 has its top two bits set; they must be zero"),
    (b"\x00\x01\x00\x00\x21\x12\xa4\x43" + TID, "STUN magic cookie is 0x2112a443; it must be 0x2112a442"),
    (b"\x00\x01\x00\x08\x21\x12\xa4\x42" + TID + bytes(4), "STUN length field says 8 bytes but 4 follow the header"),
    (b"\x00\x01\x00\x08\x21\x12\xa4\x42" + TID + b"\x00\x06\x00\x09abcd",
     "STUN attribute 0x0006 at byte 20 claims 9 bytes, past the message end"),
])
def test_malformed_stun_names_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        StunMessage.decode(data)
    assert str(info.value) == reason


def test_truncated_stun_always_raises() -> None:
    data = StunMessage(BINDING, StunClass.REQUEST, TID, ((StunAttr.USERNAME, b"u:v"),)).with_integrity(
        KEY).with_fingerprint().encode()
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            StunMessage.decode(data[:cut])


def test_ice_lite_answers_verify_in_aioice() -> None:
    request = aioice.Message(aioice.Method.BINDING, aioice.Class.REQUEST, transaction_id=TID)
    request.attributes["USERNAME"] = "sfu:peer"
    request.add_message_integrity(KEY)
    ours = StunMessage.decode(bytes(request))
    assert ours.check_integrity(KEY)
    ok = aioice.parse_message(binding_success(ours, ("10.201.1.2", 4000), KEY).encode())
    assert ok.message_class == aioice.Class.RESPONSE and ok.check_message_integrity(KEY)
    assert ok.attributes["XOR-MAPPED-ADDRESS"] == ("10.201.1.2", 4000)
    assert not ours.check_integrity(b"other")
    error = binding_error(ours, 401, "Unauthorized")
    theirs = aioice.parse_message(error.encode())
    assert theirs.message_class == aioice.Class.ERROR
    assert theirs.attributes["ERROR-CODE"] == (401, "Unauthorized")
    assert unpack_error_code(error.get(StunAttr.ERROR_CODE) or b"") == (401, "Unauthorized")
