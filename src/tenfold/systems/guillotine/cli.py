"""``tenfold guillotine ...``: init, keygen, run, status, escalate, restore, review, audit, attest.

Machine-readable output is JSON on stdout. ``audit verify`` and ``attest verify`` exit 1
with their report when verification fails; a refused restoration exits 1 naming its error;
``run`` exits 1 when the agent fails or the level reaches 3. Bad arguments and unreadable
input files are ConfigErrors (exit 2) naming the flag or field.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

from tenfold.core.registry import COMMANDS, CommandGroup
from tenfold.errors import ConfigError
from tenfold.systems.guillotine.attest import verify_attestation
from tenfold.systems.guillotine.audit import verify_audit
from tenfold.systems.guillotine.backends import python_roots
from tenfold.systems.guillotine.config import load_policy
from tenfold.systems.guillotine.deployment import DEFAULT_STATE_DIR, init_deployment, open_deployment
from tenfold.systems.guillotine.errors import GuillotineError, RestorationError
from tenfold.systems.guillotine.keys import SigningKey, write_private
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
    """Write a new key to ``--out``: never over an existing path (unless ``--force``, and then
    only over a regular file), never through a symlink or onto a device."""
    key = SigningKey.generate()
    out = Path(a.out)
    raw = key.private_bytes_hex().encode()
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not a.force:
            raise ConfigError("--out", str(out), "already exists; refusing to replace it (pass --force)")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError("--out", str(out), "is not a regular file; refusing to replace it even with --force")
        write_private(out, raw)
    else:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise ConfigError("--out", str(out), f"cannot be created: {exc.strerror}") from None
        try:
            os.write(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
    _print({"key_id": key.key_id, "private_key": str(out)})
    return 0


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


_SYSTEM_ROOTS = ("/usr", "/bin", "/lib", "/lib64", "/sbin")


def _resolve_argv(argv: list[str], state_dir: str) -> tuple[list[str], list[str]]:
    """``argv`` with ``argv[0]`` found on the host PATH and existing file arguments made absolute,
    plus the files to bind read-only (only those files -- never a whole directory).

    A file at or under the state directory or the runtime root is a ConfigError: binding it
    would expose keys and the supervisor's sockets to the sandbox.
    """
    forbidden = [Path(state_dir).resolve(), RUNTIME_ROOT.resolve()]
    exe = argv[0]
    if "/" not in exe:
        found = shutil.which(exe)
        if found is None:
            raise ConfigError("cmd", exe, "is not found on PATH")
        exe = found
    exe = os.path.abspath(exe)
    if not os.path.isfile(exe):
        raise ConfigError("cmd", argv[0], "is not a file")
    out, binds = [exe], []
    candidates = [(exe, True)] + [(x, False) for x in argv[1:]]
    for i, (arg, is_exe) in enumerate(candidates):
        p = Path(arg)
        if not is_exe and not p.is_file():
            if i:
                out.append(arg)
            continue
        real = p.resolve()
        for root in forbidden:
            if _under(real, root) or _under(Path(os.path.abspath(arg)), root):
                raise ConfigError("cmd", arg, f"is under {root}, which is never mounted into the sandbox")
        absolute = os.path.abspath(arg)
        if not is_exe:
            out.append(absolute)
        if not any(_under(real, Path(r)) for r in (*_SYSTEM_ROOTS, *python_roots())):
            binds.append(absolute)
    return out, sorted(set(binds))


def _cmd_run(a: argparse.Namespace) -> int:
    """Run the agent; exit 0 only when it exited 0 and the level stayed below 3 (offline).

    The agent's stdout/stderr (the run's ``sandbox.out``) is copied to ``--output`` (default:
    ``<state-dir>/<deployment>/runs/<run>.out``) before the run directory is removed; the
    JSON summary names it as ``output``.
    """
    argv = list(a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd)
    if not argv:
        print("tenfold guillotine run: give the agent command after --", file=sys.stderr)
        return 2
    argv, ro = _resolve_argv(argv, a.state_dir)
    if a.policy:
        dep = init_deployment(a.deployment, load_policy(a.policy), state_dir=a.state_dir)
    else:
        dep = open_deployment(a.deployment, state_dir=a.state_dir)
    try:
        handle = launch(dep, argv, a.backend, models=a.model or [], ro_paths=ro, egress=not a.no_egress)
    except GuillotineError as exc:
        print(f"tenfold guillotine run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out_path = Path(a.output) if a.output else dep.root / "runs" / f"{handle.run_dir.name}.out"
    try:
        try:
            final = handle.wait(a.timeout)
        except Exception:
            final = handle.stop()
        out_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        src = handle.run_dir / "sandbox.out"
        out_path.write_bytes(src.read_bytes() if src.exists() else b"")
    finally:
        handle.cleanup()
    final["output"] = str(out_path)
    _print(final)
    exit_info = final.get("exit") or {}
    level = int(final.get("level", 0) or 0)
    if level >= 3:
        print(f"tenfold guillotine run: level {level} reached; agent output in {out_path}", file=sys.stderr)
        return 1
    if exit_info.get("code") != 0 or exit_info.get("signal"):
        print(f"tenfold guillotine run: agent failed ({exit_info or 'no exit status'}); output in {out_path}",
              file=sys.stderr)
        return 1
    return 0


_RUN_ID = re.compile(r"[0-9a-f]{8}")


def _running_status(name: str, state_dir: Path) -> dict[str, Any] | None:
    """The status of a live run of exactly deployment ``name`` under ``state_dir`` (run dirs are
    ``<name>-<8 hex>``; the run's plan names its state directory)."""
    if not RUNTIME_ROOT.is_dir():
        return None
    for d in sorted(RUNTIME_ROOT.iterdir()):
        prefix, _, run_id = d.name.rpartition("-")
        if prefix != name or not _RUN_ID.fullmatch(run_id):
            continue
        try:
            plan = json.loads((d / "plan.json").read_bytes())
            if Path(plan["state_dir"]).resolve() != state_dir.resolve():
                continue
            path = d / "status.json"
            if path.exists():
                return dict(json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            continue
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
            "running": _running_status(dep.name, dep.root.parent)})
    return 0


def _cmd_escalate(a: argparse.Namespace) -> int:
    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    level = dep.escalate(a.to, f"operator: {a.reason}")
    _print({"deployment": dep.name, "level": level, "level_name": dep.policy.level_names[level]})
    return 0


def _read_json(flag: str, path: str) -> Any:
    try:
        return json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(flag, path, f"cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(flag, path, f"is not valid JSON: {exc}") from None


def _load_key(path: str) -> SigningKey:
    try:
        return SigningKey.load(path)
    except OSError as exc:
        raise ConfigError("--key", path, f"cannot be read: {exc.strerror}") from None
    except ValueError:
        raise ConfigError("--key", path, "must hold a 64-char hex Ed25519 private key") from None


def _cmd_restore(a: argparse.Namespace) -> int:
    dep = open_deployment(a.deployment, state_dir=a.state_dir)
    try:
        if a.restore_command == "request":
            ch = request_restoration(dep, a.to, a.ttl)
            _print(ch.body())
        elif a.restore_command == "sign":
            ch = Challenge.from_dict(_read_json("--challenge", a.challenge))
            _print(sign_restoration(ch, _load_key(a.key)).to_dict())
        else:
            ch = Challenge.from_dict(_read_json("--challenge", a.challenge))
            approvals = [Approval.from_dict(_read_json("--sig", s)) for s in a.sig]
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
    try:
        argv = json.loads(a.argv_json) if a.argv_json else None
    except ValueError as exc:
        raise ConfigError("--argv-json", a.argv_json, f"is not valid JSON: {exc}") from None
    if argv is not None and (not isinstance(argv, list) or not all(isinstance(x, str) for x in argv)):
        raise ConfigError("--argv-json", a.argv_json, "must be a JSON list of strings")
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
    p.add_argument("--out", required=True, help="private key file (created 0600; never replaces a path)")
    p.add_argument("--force", action="store_true", help="replace an existing regular file at --out")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser("run", help="run CMD inside the sandbox under a supervisor: run --policy P -- CMD")
    _state(p)
    p.add_argument("--policy", default=None, help="policy file (initialises the deployment if needed)")
    p.add_argument("--backend", default="bwrap", choices=("bwrap", "unshare"), help="isolation backend")
    p.add_argument("--model", action="append", help="weight file to fingerprint and mount read-only")
    p.add_argument("--timeout", type=float, default=None, help="stop the run after this many seconds")
    p.add_argument("--no-egress", action="store_true", help="no egress namespaces (http port closed)")
    p.add_argument("--output", default=None,
                   help="where to keep the agent's stdout/stderr (default: <state>/<deployment>/runs/<run>.out)")
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
