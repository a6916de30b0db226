"""``tenfold guillotine ...``: init, keygen, run, status, escalate, restore, review, audit, attest.

Machine-readable output is JSON on stdout. ``audit verify`` and ``attest verify`` exit 1
with their report when verification fails; a refused restoration exits 1 naming its error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.systems.guillotine.attest import verify_attestation
from tenfold.systems.guillotine.audit import verify_audit
from tenfold.systems.guillotine.config import load_policy
from tenfold.systems.guillotine.deployment import DEFAULT_STATE_DIR, init_deployment, open_deployment
from tenfold.systems.guillotine.errors import GuillotineError, RestorationError
from tenfold.systems.guillotine.keys import SigningKey
from tenfold.systems.guillotine.launcher import RUNTIME_ROOT, launch
from tenfold.systems.guillotine.quorum import (
    Approval,
    Challenge,
    apply_restoration,
    request_restoration,
    sign_restoration,
)

__all__: list[str] = []


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _state(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deployment", "-d", default="default", help="deployment ID (default: default)")
    p.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                   help=f"trusted state root, never mounted into a sandbox (default: {DEFAULT_STATE_DIR})")


def _cmd_init(a: argparse.Namespace) -> int:
    dep = init_deployment(a.deployment, load_policy(a.policy), state_dir=a.state_dir)
    _print({"deployment": dep.name, "state": str(dep.root), "level": dep.level().level})
    return 0


def _cmd_keygen(a: argparse.Namespace) -> int:
    key = SigningKey.generate()
    key.save(a.out)
    _print({"key_id": key.key_id, "private_key": str(a.out)})
    return 0


def _cmd_run(a: argparse.Namespace) -> int:
    argv = list(a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd)
    if not argv:
        print("tenfold guillotine run: give the agent command after --", file=sys.stderr)
        return 2
    if a.policy:
        dep = init_deployment(a.deployment, load_policy(a.policy), state_dir=a.state_dir)
    else:
        dep = open_deployment(a.deployment, state_dir=a.state_dir)
    ro = sorted({str(Path(x).resolve().parent) for x in argv[1:] if Path(x).is_file()})
    try:
        handle = launch(dep, argv, a.backend, models=a.model or [], ro_paths=ro, egress=not a.no_egress)
    except GuillotineError as exc:
        print(f"tenfold guillotine run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        final = handle.wait(a.timeout)
    except Exception:
        final = handle.stop()
    finally:
        handle.cleanup()
    _print(final)
    return 0


def _running_status(name: str) -> dict[str, Any] | None:
    for d in sorted(RUNTIME_ROOT.glob(f"{name}-*")):
        path = d / "status.json"
        if path.exists():
            return dict(json.loads(path.read_bytes()))
    return None


def _cmd_status(a: argparse.Namespace) -> int:
    from tenfold.systems.guillotine.topology import plan_topology

    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    rec = dep.level()
    topo = plan_topology()
    _print({"deployment": dep.name, "level": rec.level, "level_name": dep.policy.level_names[rec.level],
            "level_file_valid": rec.valid, "reason": rec.reason, "tombstoned": dep.tombstoned(),
            "l3_shared": topo.l3_shared, "hypervisor_cpus": list(topo.hypervisor_cpus),
            "sandbox_cpus": list(topo.sandbox_cpus),
            "out_of_scope": ["shared-L3 timing channels (rdtsc stays untrapped: PR_SET_TSC crashes Python)"],
            "running": _running_status(dep.name)})
    return 0


def _cmd_escalate(a: argparse.Namespace) -> int:
    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    level = dep.escalate(a.to, f"operator: {a.reason}")
    _print({"deployment": dep.name, "level": level, "level_name": dep.policy.level_names[level]})
    return 0


def _cmd_restore(a: argparse.Namespace) -> int:
    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    try:
        if a.restore_command == "request":
            ch = request_restoration(dep, a.to, a.ttl)
            _print(ch.body())
        elif a.restore_command == "sign":
            ch = Challenge.from_dict(json.loads(Path(a.challenge).read_text()))
            _print(sign_restoration(ch, SigningKey.load(a.key)).to_dict())
        else:
            ch = Challenge.from_dict(json.loads(Path(a.challenge).read_text()))
            approvals = [Approval(**json.loads(Path(s).read_text())) for s in a.sig]
            level = apply_restoration(dep, ch, approvals)
            _print({"deployment": dep.name, "level": level, "level_name": dep.policy.level_names[level]})
    except RestorationError as exc:
        print(f"tenfold guillotine restore: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_review(a: argparse.Namespace) -> int:
    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    review = dep.root / "review"
    _print(sorted(p.stem for p in review.glob("*.msgpack")) if review.exists() else [])
    return 0


def _cmd_audit(a: argparse.Namespace) -> int:
    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    rep = verify_audit(Path(a.log) if a.log else dep.audit_path, dep.trusted_keys())
    _print(rep.to_dict())
    return 0 if rep.ok else 1


def _cmd_attest(a: argparse.Namespace) -> int:
    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    argv = json.loads(a.argv_json) if a.argv_json else None
    rep = verify_attestation(dep, argv)
    _print(rep.to_dict())
    return 0 if rep.ok else 1


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="guillotine_command", metavar="VERB")
    sub.required = True

    p = sub.add_parser("init", help="create a deployment's state directory from a policy file")
    _state(p)
    p.add_argument("--policy", required=True, help="policy YAML/JSON/TOML")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("keygen", help="write a new Ed25519 operator key; print its key_id")
    p.add_argument("--out", required=True, help="private key file (written 0600)")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser("run", help="run CMD inside the sandbox under a supervisor: run --policy P -- CMD")
    _state(p)
    p.add_argument("--policy", default=None, help="policy file (initialises the deployment if needed)")
    p.add_argument("--backend", default="bwrap", choices=("bwrap", "unshare"), help="isolation backend")
    p.add_argument("--model", action="append", help="weight file to fingerprint and mount read-only")
    p.add_argument("--timeout", type=float, default=None, help="stop the run after this many seconds")
    p.add_argument("--no-egress", action="store_true", help="no egress namespaces (http port closed)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("status", help="level, tombstone, CPU partition and a running supervisor's counters")
    _state(p)
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("escalate", help="raise the level (never lowers); a running supervisor enforces it")
    _state(p)
    p.add_argument("--to", type=int, required=True, help="target level 0-5")
    p.add_argument("--reason", default="operator", help="recorded in the audit log")
    p.set_defaults(func=_cmd_escalate)

    p = sub.add_parser("restore", help="M-of-N restoration: request | sign | apply")
    _state(p)
    rs = p.add_subparsers(dest="restore_command", metavar="STEP")
    rs.required = True
    r = rs.add_parser("request", help="issue a challenge to lower one level")
    r.add_argument("--to", type=int, required=True)
    r.add_argument("--ttl", type=float, default=None, help="seconds (default: the policy's)")
    r = rs.add_parser("sign", help="an operator signs a challenge")
    r.add_argument("--challenge", required=True)
    r.add_argument("--key", required=True)
    r = rs.add_parser("apply", help="apply M approvals")
    r.add_argument("--challenge", required=True)
    r.add_argument("--sig", action="append", default=[], help="approval JSON file (repeat M times)")
    p.set_defaults(func=_cmd_restore)

    p = sub.add_parser("review", help="list outputs held at probation")
    _state(p)
    p.set_defaults(func=_cmd_review)

    p = sub.add_parser("audit", help="audit verify: re-walk the hash chain, checkpoints and head")
    _state(p)
    p.add_argument("action", choices=("verify",))
    p.add_argument("--log", default=None, help="a log file other than the deployment's")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("attest", help="attest verify: recompute the launch measurement")
    _state(p)
    p.add_argument("action", choices=("verify",))
    p.add_argument("--argv-json", default=None, help="the argv to check against (default: the recorded one)")
    p.set_defaults(func=_cmd_attest)


COMMANDS.add("guillotine", CommandGroup(
    name="guillotine", help="sandbox a model behind a supervisor with escalating isolation (guillotine)",
    configure=_configure, kind="system"))
