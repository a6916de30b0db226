"""Namespace testbed: build, use, always clean up, and clear errors (root-marked where real)."""

from __future__ import annotations

import subprocess

import pytest

from tenfold.net.netns import NetnsError, Testbed, require_root


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_clear_error_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tenfold.net.netns.os.geteuid", lambda: 1000)
    with pytest.raises(NetnsError, match=r"network namespaces need root .* uid 1000"), Testbed():
        pass


def test_clear_error_when_ip_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tenfold.net.netns.os.geteuid", lambda: 0)
    monkeypatch.setattr("tenfold.net.netns.shutil.which", lambda _name: None)
    with pytest.raises(NetnsError, match="apt-get install iproute2"):
        require_root()


def test_bad_prefix() -> None:
    with pytest.raises(NetnsError, match="must be 1-9 letters or digits"):
        Testbed("much-too-long-prefix")


@pytest.mark.root
def test_two_namespaces_exchange_udp_and_run_commands() -> None:
    with Testbed() as bed:
        a, b = bed.namespace("a"), bed.namespace("b")
        end_a, _ = bed.veth(a, "10.201.9.1/24", b, "10.201.9.2/24")
        assert {a, b} <= _namespaces()
        links = bed.run(a, ["ip", "-o", "addr", "show", "dev", end_a]).stdout
        assert "10.201.9.1/24" in links
        rx = bed.udp_socket(b, ("10.201.9.2", 7000))
        rx.settimeout(5)
        tx = bed.udp_socket(a, ("10.201.9.1", 0))
        tx.sendto(b"hello", ("10.201.9.2", 7000))
        data, addr = rx.recvfrom(100)
        assert (data, addr[0]) == (b"hello", "10.201.9.1")
        with pytest.raises(NetnsError, match="exited 3"):
            bed.run(a, ["sh", "-c", "exit 3"])
    assert not {a, b} & _namespaces()


@pytest.mark.root
def test_cleanup_runs_on_failure() -> None:
    names: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), Testbed() as bed:
        names.append(bed.namespace("x"))
        bed.popen(names[0], ["sleep", "30"])
        raise RuntimeError("boom")
    assert names[0] not in _namespaces()
