"""CLI verbs and attestation: audit verify and attest verify exit 1 after tampering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenfold.cli import main
from tenfold.systems.guillotine.attest import measure, verify_attestation, write_attestation
from tenfold.systems.guillotine.deployment import Deployment
from tenfold.systems.guillotine.keys import SigningKey
from tenfold.systems.guillotine.landlock import LandlockRules


def _attest(dep: Deployment, tmp_path: Path) -> list[str]:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 100)
    argv = ["bwrap", "--unshare-all", "--", "python", "agent.py"]
    doc = measure(dep, argv, LandlockRules(("/usr",), ("/workdir",)).describe(7), [model])
    write_attestation(dep, doc, dep.key("supervisor"))
    return argv


def test_attest_verify_catches_policy_and_argv_change(dep: Deployment, tmp_path: Path) -> None:
    argv = _attest(dep, tmp_path)
    assert verify_attestation(dep).ok
    assert verify_attestation(dep, [*argv, "--extra"]).errors == ["argv changed since launch"]
    pol = json.loads((dep.root / "policy.json").read_text())
    pol["rate_per_s"] = 999.0
    (dep.root / "policy.json").write_text(json.dumps(pol))
    assert verify_attestation(dep).errors == ["policy changed since launch"]


def test_cli_audit_and_attest_verify(dep: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _attest(dep, tmp_path)
    common = ["-d", dep.name, "--state-dir", str(dep.root.parent)]
    assert main(["guillotine", "audit", "verify", *common]) == 0
    assert main(["guillotine", "attest", "verify", *common]) == 0
    capsys.readouterr()
    dep.escalate(2, "test")
    lines = dep.audit_path.read_bytes().splitlines(keepends=True)
    dep.audit_path.write_bytes(b"".join(lines[:1] + lines[2:]))
    assert main(["guillotine", "audit", "verify", *common]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
    (dep.root / "attestation.json").write_text((dep.root / "attestation.json").read_text().replace('"argv"', '"argx"'))
    assert main(["guillotine", "attest", "verify", *common]) == 1


def test_cli_escalate_status_restore(dep: Deployment, tmp_path: Path, operators: list[SigningKey],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    common = ["-d", dep.name, "--state-dir", str(dep.root.parent)]
    assert main(["guillotine", "escalate", *common, "--to", "2"]) == 0
    assert main(["guillotine", "escalate", *common, "--to", "1"]) == 0
    capsys.readouterr()
    assert main(["guillotine", "status", *common]) == 0
    st = json.loads(capsys.readouterr().out)
    assert (st["level"], st["level_name"], st["l3_shared"]) == (2, "severed", True)
    assert main(["guillotine", "restore", *common, "request", "--to", "1"]) == 0
    ch = tmp_path / "ch.json"
    ch.write_text(capsys.readouterr().out)
    sigs = []
    for i, k in enumerate(operators[:2]):
        kp = tmp_path / f"k{i}"
        k.save(kp)
        assert main(["guillotine", "restore", *common, "sign", "--challenge", str(ch), "--key", str(kp)]) == 0
        sp = tmp_path / f"s{i}.json"
        sp.write_text(capsys.readouterr().out)
        sigs.append(sp)
    assert main(["guillotine", "restore", *common, "apply", "--challenge", str(ch), "--sig", str(sigs[0])]) == 1
    assert "QuorumError" in capsys.readouterr().err
    assert main(["guillotine", "restore", *common, "apply", "--challenge", str(ch), "--sig", str(sigs[0]),
                 "--sig", str(sigs[1])]) == 0
    assert json.loads(capsys.readouterr().out)["level"] == 1
