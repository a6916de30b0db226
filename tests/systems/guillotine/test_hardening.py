"""Regression tests for the audit's findings that need no sandbox: quorum binding, policy
replacement, operator-side level validation, the fs port, keygen and the CLI's input checks."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from pathlib import Path

import pytest

from tenfold.cli import main
from tenfold.errors import ConfigError
from tenfold.systems.guillotine import cli as gcli
from tenfold.systems.guillotine.config import Policy, load_policy
from tenfold.systems.guillotine.deployment import Deployment, init_deployment
from tenfold.systems.guillotine.errors import PortClosed, QuorumError, SchemaError, Tombstoned
from tenfold.systems.guillotine.keys import SigningKey
from tenfold.systems.guillotine.quorum import Challenge, apply_restoration, request_restoration, sign_restoration
from tenfold.systems.guillotine.seccomp_filter import EPERM_SYSCALLS, KILL_SYSCALLS
from tenfold.systems.guillotine.supervisor import Supervisor

# --- seccomp lists ----------------------------------------------------------------------------


def test_filter_lists_cover_cross_process_and_metadata_syscalls() -> None:
    for name in ("ptrace", "pidfd_getfd", "pidfd_open", "kcmp", "process_madvise", "process_vm_readv",
                 "process_vm_writev"):
        assert name in KILL_SYSCALLS
    for name in ("chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
                 "utimensat", "utime", "utimes", "setxattr", "fsetxattr", "removexattr"):
        assert name in EPERM_SYSCALLS


# --- item 5 / 7: quorum -----------------------------------------------------------------------


def test_restore_below_zero_refused(dep: Deployment, operators: list[SigningKey]) -> None:
    with pytest.raises(QuorumError, match="at level 0; there is nothing to restore"):
        request_restoration(dep, -1)
    forged = Challenge(dep.name, 0, -1, "00" * 16, dep.now() + 60, "")
    with pytest.raises(QuorumError, match="nothing to restore"):
        apply_restoration(dep, forged, [sign_restoration(forged, k) for k in operators[:2]])
    assert dep.level().level == 0


def test_edited_expiry_refused_even_with_quorum(dep: Deployment, operators: list[SigningKey],
                                                clock: object) -> None:
    dep.escalate(2, "canary")
    ch = request_restoration(dep, 1, ttl_s=60)
    edited = dataclasses.replace(ch, expiry=ch.expiry + 10**9)
    with pytest.raises(QuorumError, match="does not match the one issued"):
        apply_restoration(dep, edited, [sign_restoration(edited, k) for k in operators[:2]])
    assert dep.level().level == 2
    assert apply_restoration(dep, ch, [sign_restoration(ch, k) for k in operators[:2]]) == 1


@pytest.mark.parametrize("ttl", [math.inf, math.nan, 0.0, -5.0])
def test_ttl_must_be_finite_positive(dep: Deployment, ttl: float) -> None:
    dep.escalate(1, "quota")
    with pytest.raises(ConfigError, match="'ttl'"):
        request_restoration(dep, 0, ttl_s=ttl)


def test_policy_rejects_infinite_rates_and_ttl(tmp_path: Path) -> None:
    for text, field in (("rate_per_s: .inf\n", "rate_per_s"), ("rate_per_s: .nan\n", "rate_per_s"),
                        ("challenge_ttl_s: .inf\n", "challenge_ttl_s")):
        p = tmp_path / "p.yaml"
        p.write_text(text)
        with pytest.raises(ConfigError, match=repr(field)):
            load_policy(p)


def test_no_operators_no_restoration(tmp_path: Path) -> None:
    d = init_deployment("noops", Policy(quorum_m=3), state_dir=tmp_path)
    d.escalate(1, "quota")
    with pytest.raises(ConfigError, match="must be <= N = 0 operators"):
        request_restoration(d, 0)


# --- item 6: policy replacement ---------------------------------------------------------------


def test_reinit_with_other_policy_refused(dep: Deployment, tmp_path: Path) -> None:
    before = (dep.root / "policy.json").read_bytes()
    solo = Policy(operators=(SigningKey.generate().key_id,), quorum_m=1)
    with pytest.raises(ConfigError, match=r"'t1'.*different policy"):
        init_deployment("t1", solo, state_dir=dep.root.parent)
    assert (dep.root / "policy.json").read_bytes() == before
    same = init_deployment("t1", dep.policy, state_dir=dep.root.parent)  # idempotent with the same policy
    assert same.policy.canonical() == dep.policy.canonical()
    p = tmp_path / "solo.yaml"
    p.write_text(f"operators: [{solo.operators[0]}]\nquorum_m: 1\n")
    common = ["-d", "t1", "--state-dir", str(dep.root.parent)]
    assert main(["guillotine", "init", *common, "--policy", str(p)]) == 2
    assert main(["guillotine", "run", *common, "--policy", str(p), "--", "/bin/true"]) == 2
    assert (dep.root / "policy.json").read_bytes() == before


def test_init_checks_tombstone_first(dep: Deployment) -> None:
    dep.escalate(5, "test")
    before = (dep.root / "policy.json").read_bytes()
    with pytest.raises(Tombstoned):
        init_deployment("t1", Policy(quorum_m=1), state_dir=dep.root.parent)
    assert (dep.root / "policy.json").read_bytes() == before


# --- items 4, 5, 8: supervisor without a sandbox ----------------------------------------------


def _supervisor(dep: Deployment, tmp_path: Path) -> Supervisor:
    run = tmp_path / "run"
    run.mkdir()
    sup = Supervisor({"deployment": dep.name, "state_dir": str(dep.root.parent), "runtime_dir": str(run)})
    sup.shredder.arm()
    return sup


@pytest.mark.parametrize("level", [6, -1, 100, True, "3"])
def test_operator_escalate_validates_level(dep: Deployment, tmp_path: Path, level: object) -> None:
    sup = _supervisor(dep, tmp_path)
    with pytest.raises(ConfigError, match="'level'"):
        sup.trigger_operator(level, "test")  # type: ignore[arg-type]
    assert sup.level == 0 and dep.level().level == 0


def test_fs_read_returns_data_and_never_writes(dep: Deployment, tmp_path: Path) -> None:
    sup = _supervisor(dep, tmp_path)
    assert sup._fs("write", {"name": "art", "data": b"important"}) == {"stored": "art", "bytes": 9}
    blob = (dep.root / "artifacts" / "art.enc").read_bytes()
    assert sup._fs("read", {"name": "art"}) == {"name": "art", "data": b"important"}
    assert sup._fs("read", {"name": "art", "data": b""}) == {"name": "art", "data": b"important"}
    assert (dep.root / "artifacts" / "art.enc").read_bytes() == blob
    with pytest.raises(SchemaError, match="no artifact"):
        sup._fs("read", {"name": "missing"})
    with pytest.raises(SchemaError, match="at most 128"):
        sup._fs("write", {"name": "a" * 129, "data": b"x"})
    with pytest.raises(SchemaError):
        sup._fs("write", {"name": ["x"], "data": b"x"})
    dep.escalate(4, "test")  # shredded: unreadable, refused rather than garbage
    with pytest.raises(PortClosed, match="cannot be decrypted"):
        sup._fs("read", {"name": "art"})


# --- item 9: keygen ---------------------------------------------------------------------------


def test_keygen_never_replaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "op.key"
    assert main(["guillotine", "keygen", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert main(["guillotine", "keygen", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == first
    assert main(["guillotine", "keygen", "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != first
    target = tmp_path / "victim"
    target.write_text("keep")
    link = tmp_path / "link.key"
    link.symlink_to(target)
    assert main(["guillotine", "keygen", "--out", str(link)]) == 2
    assert main(["guillotine", "keygen", "--out", str(link), "--force"]) == 2
    assert target.read_text() == "keep" and link.is_symlink()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["guillotine", "keygen", "--out", str(fifo), "--force"]) == 2
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert main(["guillotine", "keygen", "--out", str(tmp_path / "nodir" / "k")]) == 2


# --- item 10: bad input files -----------------------------------------------------------------


def test_restore_and_attest_bad_inputs_exit_2(dep: Deployment, tmp_path: Path, operators: list[SigningKey],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    common = ["-d", dep.name, "--state-dir", str(dep.root.parent)]
    dep.escalate(1, "quota")
    good = tmp_path / "ch.json"
    good.write_text(json.dumps(request_restoration(dep, 0).body()))
    key = tmp_path / "k"
    operators[0].save(key)
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not hex")
    non_object = tmp_path / "list.json"
    non_object.write_text("[1]")
    missing_field = tmp_path / "ap.json"
    missing_field.write_text('{"key_id": "x"}')
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    cases = [
        (["sign", "--challenge", str(tmp_path / "nope.json"), "--key", str(key)], "--challenge"),
        (["sign", "--challenge", str(non_object), "--key", str(key)], "'challenge'"),
        (["sign", "--challenge", str(not_json), "--key", str(key)], "not valid JSON"),
        (["sign", "--challenge", str(good), "--key", str(tmp_path / "nokey")], "--key"),
        (["sign", "--challenge", str(good), "--key", str(bad_key)], "--key"),
        (["apply", "--challenge", str(good), "--sig", str(missing_field)], "approval.sig"),
        (["apply", "--challenge", str(good), "--sig", str(tmp_path / "nosig.json")], "--sig"),
    ]
    for args, needle in cases:
        assert main(["guillotine", "restore", *common, *args]) == 2, args
        assert needle in capsys.readouterr().err, args
    assert main(["guillotine", "attest", "verify", *common, "--argv-json", "not json"]) == 2
    assert "--argv-json" in capsys.readouterr().err
    assert dep.level().level == 1


# --- items 2, 11: run's argv handling ---------------------------------------------------------


def test_run_resolves_argv_and_binds_only_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "w"
    work.mkdir()
    (work / "agent.py").write_text("print(1)\n")
    (work / "secret.txt").write_text("s")
    monkeypatch.chdir(work)
    argv, ro = gcli._resolve_argv(["sh", "agent.py", "--flag", "x"], str(tmp_path / "state"))
    assert argv[0].endswith("/sh") and os.path.isabs(argv[0])
    assert argv[1:] == [str(work / "agent.py"), "--flag", "x"]
    assert ro == [str(work / "agent.py")]  # the file, never its directory (secret.txt stays hidden)
    with pytest.raises(ConfigError, match="not found on PATH"):
        gcli._resolve_argv(["no-such-binary-xyz"], str(tmp_path / "state"))


def test_run_refuses_state_and_runtime_files(dep: Deployment, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    key = dep.root / "keys" / "supervisor.key"
    with pytest.raises(ConfigError, match="never mounted"):
        gcli._resolve_argv(["/bin/cat", str(key)], str(dep.root.parent))
    runtime = tmp_path / "rt"
    (runtime / "d-0000aaaa").mkdir(parents=True)
    (runtime / "d-0000aaaa" / "plan.json").write_text("{}")
    monkeypatch.setattr(gcli, "RUNTIME_ROOT", runtime)
    with pytest.raises(ConfigError, match="never mounted"):
        gcli._resolve_argv(["/bin/cat", str(runtime / "d-0000aaaa" / "plan.json")], str(dep.root.parent))
    common = ["-d", dep.name, "--state-dir", str(dep.root.parent)]
    assert main(["guillotine", "run", *common, "--no-egress", "--", "/bin/cat", str(key)]) == 2


# --- item 12: status matches exactly ----------------------------------------------------------


def test_status_matches_only_this_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    init_deployment("demo", Policy(), state_dir=state)
    other_state = tmp_path / "other"
    runtime = tmp_path / "rt"
    for run, st in (("demo-2-0123abcd", state), ("demo-ffffffff", other_state)):
        (runtime / run).mkdir(parents=True)
        (runtime / run / "plan.json").write_text(json.dumps({"state_dir": str(st)}))
        (runtime / run / "status.json").write_text(json.dumps({"deployment": run}))
    monkeypatch.setattr(gcli, "RUNTIME_ROOT", runtime)
    assert main(["guillotine", "status", "-d", "demo", "--state-dir", str(state)]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is None
    (runtime / "demo-0000beef").mkdir()
    (runtime / "demo-0000beef" / "plan.json").write_text(json.dumps({"state_dir": str(state)}))
    (runtime / "demo-0000beef" / "status.json").write_text(json.dumps({"deployment": "mine"}))
    assert main(["guillotine", "status", "-d", "demo", "--state-dir", str(state)]) == 0
    assert json.loads(capsys.readouterr().out)["running"] == {"deployment": "mine"}
