"""The supervisor ("hypervisor core"): a separate trusted process that owns one sandbox run.

It is started by :func:`tenfold.systems.guillotine.launcher.launch` as
``python -m tenfold.systems.guillotine.supervisor PLAN.json`` and, in order:

1. refuses tombstoned deployments and levels >= 3 (offline: restore first);
2. pins itself to the hypervisor cores, creates the v1 cgroups (limits) and a v2 cgroup
   (a second freeze/kill switch), the port socket, the egress namespaces and the watchdog;
3. measures and signs the launch (:mod:`.attest`), then starts the backend (g-init joins the
   cgroups before ``exec``);
4. serves: g-init's control channel (armed / exit status / the seccomp notify fd), the port
   stream through the :class:`~.pipeline.Pipeline`, the operator socket, and a heartbeat loop
   that feeds the watchdog, re-reads the signed level file and polls cgroup counters.

Every trigger goes through :meth:`Supervisor.trigger`: the level rises to
``max(level, policy.min_level(trigger))``, the enforcement of every level up to it runs and
its postcondition is read back (a failure escalates further), then the change is audited.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

from tenfold.core.assets import cache_dir
from tenfold.errors import ConfigError
from tenfold.systems.guillotine.attest import measure, write_attestation
from tenfold.systems.guillotine.backends import BACKENDS, PORT_DIR, WORKDIR, SandboxSpec, python_roots
from tenfold.systems.guillotine.cgroup import CgroupLimits, CgroupV1, CgroupV2, detect_mounts
from tenfold.systems.guillotine.deployment import open_deployment
from tenfold.systems.guillotine.detectors import DetectorSet, WeightIndex
from tenfold.systems.guillotine.egress import Egress, fetch
from tenfold.systems.guillotine.errors import (
    AuditError,
    FrameTooLarge,
    GuillotineError,
    PortClosed,
    PortError,
    SchemaError,
)
from tenfold.systems.guillotine.failsafe import CgroupPower, CryptoShredder, NetnsCableCutter
from tenfold.systems.guillotine.keys import canonical
from tenfold.systems.guillotine.landlock import LandlockRules, abi_version
from tenfold.systems.guillotine.levels import LAST_LEVEL
from tenfold.systems.guillotine.pipeline import Delivery, Pipeline
from tenfold.systems.guillotine.ports import Message, read_frame, write_frame
from tenfold.systems.guillotine.seccomp_filter import NotifyListener
from tenfold.systems.guillotine.topology import plan_topology

__all__ = ["Supervisor", "main"]

def _tool_add(args: list[Any]) -> Any:
    return sum(float(x) for x in args)


def _tool_upper(args: list[Any]) -> Any:
    return str(args[0]).upper() if args else ""


MAX_NEXT_TIMEOUT_S = 3600.0
"""Upper bound of ``io.next``'s ``timeout`` (seconds)."""
MAX_FS_NAME = 128
"""Longest ``fs`` artifact name."""

_TOOLS: dict[str, Callable[[list[Any]], Any]] = {"add": _tool_add, "upper": _tool_upper}
"""Callables the ``tool`` port may run (on the supervisor side, after the pipeline)."""


class Supervisor:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.dep = open_deployment(plan["deployment"], state_dir=plan["state_dir"])
        self.policy = self.dep.policy
        self.run_dir = Path(plan["runtime_dir"])
        self.audit = self.dep.audit("supervisor")
        self.key = self.dep.key("supervisor")
        self.counters: Counter[str] = Counter()
        self.level = 0
        self.enforced = 0
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.prompts: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.waiters: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.contain_ms: list[float] = []
        self.events: list[dict[str, Any]] = []
        self.socket_times: list[float] = []
        self.exit_info: dict[str, Any] | None = None
        self._ctl_seen: set[str] = set()
        self.armed: dict[str, Any] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.egress: Egress | None = None
        self.egress_q: queue.Queue[tuple[Any, queue.Queue[Any]]] = queue.Queue()
        self.v1: CgroupV1 | None = None
        self.v2: CgroupV2 | None = None
        self.watchdog_pid = 0
        self.watchdog_sock: socket.socket | None = None
        self.token = secrets.token_hex(16)
        self.fs_used = 0
        self.port_conns: list[socket.socket] = []
        self.shredder = CryptoShredder(self.dep.root / "data.key")
        self.measurement = ""
        self.topology = plan_topology()
        self.mode = str(plan.get("mode", "guillotine"))
        """'guillotine' (everything), 'single_boundary' (bwrap + allowlisting proxy only) or
        'unsandboxed' (a plain subprocess as uid 65534 speaking the same protocol): the baselines."""
        self.full = self.mode == "guillotine"
        self.port_srv: socket.socket | None = None
        self.op_srv: socket.socket | None = None
        self.cutter: NetnsCableCutter | None = None
        self.watchdog_pidfd = -1
        self._last_counters: dict[str, int] = {}
        self.act_ms: dict[str, list[float]] = {}
        self.t_contained = 0.0
        self.startup_s: float | None = None
        self.t_launch = time.monotonic()

    # --- launch ---------------------------------------------------------------------------
    def start(self) -> None:
        self.dep.check_runnable()
        cur = self.dep.level()
        if cur.level >= 3:
            raise GuillotineError(f"deployment {self.dep.name!r} is at level {cur.level} "
                                  f"({self.policy.level_names[cur.level]}); restore it first")
        self.level = self.enforced = cur.level
        os.sched_setaffinity(0, set(self.topology.hypervisor_cpus))
        mounts = detect_mounts()
        cg_name = f"{self.dep.name}-{self.token[:8]}"
        limits = CgroupLimits(self.policy.memory_max_bytes, self.policy.pids_max, self.policy.cpu_quota_pct,
                              self.topology.sandbox_list)
        self.v1 = CgroupV1(cg_name, mounts) if mounts.v1 else None
        if self.v1 is not None:
            self.v1.create(limits)
        if mounts.v2 is not None:
            self.v2 = CgroupV2(cg_name, mounts)
            self.v2.create(limits)
        self.shredder.arm()
        port_dir = self.run_dir / "ports"
        port_dir.mkdir(mode=0o755)
        self.port_srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.port_srv.bind(str(port_dir / "port.sock"))
        os.chmod(port_dir / "port.sock", 0o666)
        self.port_srv.listen(8)
        self.op_srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.op_srv.bind(str(self.run_dir / "operator.sock"))
        os.chmod(self.run_dir / "operator.sock", 0o600)
        self.op_srv.listen(8)
        if self.plan.get("egress", True):
            self.egress = Egress(f"tfg{self.token[:6]}", self.run_dir / "sink.jsonl")
            self.egress.create()
            self.cutter = NetnsCableCutter(self.egress.ns_e, self.egress.link)
        models = [Path(m) for m in self.plan.get("models", [])]
        if self.full:
            index = WeightIndex(models, cache_dir("guillotine")) if models else None
            self.detectors = DetectorSet(tuple(c.encode() for c in self.policy.canaries), index,
                                         self.policy.entropy_threshold)
        else:
            self.detectors = DetectorSet((), None, 8.0)
        backend = "none" if self.mode == "unsandboxed" else self.plan.get("backend", "bwrap")
        ro = (*python_roots(), *self.plan.get("ro_paths", []), *[str(m) for m in models])
        # bwrap gives the sandbox private tmpfs /workdir and /tmp; the other backends see the
        # host's filesystem, so their only writable place is a private directory of this run.
        private = backend == "bwrap"
        work = WORKDIR if private else str(self.run_dir / "work")
        if not private:
            (self.run_dir / "work").mkdir()
        rules = LandlockRules(("/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache", "/proc", "/dev", *ro),
                              (WORKDIR, "/tmp", "/dev/null") if private else (work, "/dev/null"))
        sock_path = PORT_DIR + "/port.sock" if backend == "bwrap" else str(port_dir / "port.sock")
        init_plan = {"socket": sock_path, "token": self.token, "argv": self.plan["argv"],
                     "env": {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "HF_HUB_OFFLINE": "1",
                             "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                             "GUILLOTINE_SUPERVISOR_PID": str(os.getpid()), **self.plan.get("env", {})},
                     "rlimits": {"RLIMIT_NOFILE": self.policy.nofile, "RLIMIT_FSIZE": self.policy.fsize_bytes,
                                 "RLIMIT_CORE": 0},
                     "ro": list(rules.read_only), "rw": list(rules.read_write),
                     "notify": bool(self.plan.get("notify", True)) and self.full, "harden": self.full}
        spec = SandboxSpec(port_dir, tuple(self.plan.get("ro_paths", [])) + tuple(str(m) for m in models),
                           self.policy.tmpfs_bytes, json.dumps(init_plan))
        argv = BACKENDS.get(backend)(spec)
        popen_env: dict[str, str] | None = None
        workdir: Path | None = None
        if not private:  # g-init starts in the run's private work directory
            workdir = self.run_dir / "work"
        if backend == "none":  # the unsandboxed baseline: same uid as the operator
            popen_env = {"GUILLOTINE_INIT": spec.init_env, "PATH": "/usr/bin:/bin"}
        doc = measure(self.dep, [a for a in argv if not a.startswith('{"socket"')] + list(self.plan["argv"]),
                      rules.describe(abi_version()), models, bool(self.plan.get("notify", True)))
        self.measurement = doc["measurement"]
        write_attestation(self.dep, doc, self.key)
        if self.full:
            self.watchdog_pid, self.watchdog_sock = self._spawn_watchdog()
            self.watchdog_pidfd = os.pidfd_open(self.watchdog_pid)
        self._write_resources()
        self.pipeline = Pipeline(self.policy, self.detectors, self.audit, self.key, self.measurement,
                                 lambda: self.level, self.trigger, time.monotonic, self._hold)
        self.audit.append({"type": "launch", "backend": backend, "argv": list(self.plan["argv"]),
                           "measurement": self.measurement, "level": self.level,
                           "cpus": {"hypervisor": list(self.topology.hypervisor_cpus),
                                    "sandbox": list(self.topology.sandbox_cpus),
                                    "l3_shared": self.topology.l3_shared}}, checkpoint=True)
        for target in (self._accept_ports, self._accept_operator, self._heartbeat, self._pulse, self._egress_worker):
            threading.Thread(target=target, daemon=True).start()
        groups = [g for g in (self.v1, self.v2) if g is not None]

        def join_cgroups() -> None:  # runs in the child between fork and exec
            for g in groups:
                g.join(os.getpid())

        self.t_launch = time.monotonic()
        with open(self.run_dir / "sandbox.out", "wb") as out:
            self.proc = subprocess.Popen(argv, preexec_fn=join_cgroups, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=popen_env, cwd=workdir)
        self.audit.append({"type": "sandbox_started", "pid": self.proc.pid})

    def _write_resources(self) -> None:
        """What this run created, so :meth:`RunHandle.cleanup` can remove it if we die uncleanly."""
        res = {"v1": self.v1.paths() if self.v1 else None, "v2": self.v2.paths() if self.v2 else None,
               "netns": [self.egress.ns_e, self.egress.ns_h] if self.egress else [],
               "sink_pid": self.egress.sink.pid if self.egress and self.egress.sink else None,
               "watchdog_pid": self.watchdog_pid or None}
        (self.run_dir / "resources.json").write_text(json.dumps(res))

    def _spawn_watchdog(self) -> tuple[int, socket.socket]:
        from tenfold.systems.guillotine.watchdog import spawn_watchdog

        wplan = {"supervisor_pid": os.getpid(), "deadline_ms": self.policy.watchdog_deadline_ms,
                 "deployment": self.dep.name, "state_dir": str(self.dep.root.parent),
                 "v1": self.v1.paths() if self.v1 else None, "v2": self.v2.paths() if self.v2 else None,
                 "netns": self.egress.ns_e if self.egress else None,
                 "link": self.egress.link if self.egress else None,
                 "sink_pid": self.egress.sink.pid if self.egress and self.egress.sink else None}
        return spawn_watchdog(wplan)

    # --- triggers and enforcement ----------------------------------------------------------
    def trigger(self, name: str, detail: dict[str, Any]) -> int:
        """Raise to the trigger's minimum level: act (and verify), then audit. Returns the level."""
        t0 = time.monotonic()
        demanded = self.policy.min_level(name)
        if name == "socket_attempt":
            now = time.monotonic()
            self.socket_times = [t for t in self.socket_times if now - t < self.policy.socket_repeat_window_s]
            self.socket_times.append(now)
            if len(self.socket_times) >= self.policy.socket_repeat_count:
                demanded = max(demanded, self.policy.min_level("socket_repeat"))
        with self.lock:
            self.counters[f"trigger.{name}"] += 1
            self.events.append({"trigger": name, "level": demanded, **detail})
            try:
                if demanded > self.level and self.full:
                    reached = self._enforce(demanded, name)
                    self.contain_ms.append(1000 * (self.t_contained - t0))
                    self.dep.escalate(reached, name, detail={**detail, "trigger": name,
                                                             "contain_ms": round(self.contain_ms[-1], 3)})
                    self._verify_state_levels(reached)
                else:
                    self.audit.append({"type": "trigger", "trigger": name, "level": self.level, "detail": detail})
            except AuditError:
                # The log cannot be written (full disk): containment already acted; go to L3.
                self.counters["audit_write_failure"] += 1
                if self.full and self.level < self.policy.min_level("audit_write_failure"):
                    self._enforce(self.policy.min_level("audit_write_failure"), "audit_write_failure")
            return self.level

    def _enforce(self, target: int, reason: str) -> int:
        """Run every level's action up to ``target``, verifying each; a failed check escalates further.

        NOTE: the actions run from the highest level down, so the strongest containment
        (freeze and kill) lands first; ``t_contained`` marks when the top one was verified.
        """
        while True:
            self.level = max(self.level, target)
            failed = False
            for k in range(target, self.enforced, -1):
                ok = self._act(k, reason)
                if k == target:
                    self.t_contained = time.monotonic()
                if not ok:
                    self.audit.append({"type": "postcondition_failed", "level": k})
                    failed = True
            self.enforced = max(self.enforced, target)
            if failed and target < LAST_LEVEL:
                target += 1
                continue
            break
        self._write_status()
        return target

    def _act(self, k: int, reason: str) -> bool:
        t0 = time.monotonic()
        ok = self._act_inner(k, reason)
        self.act_ms.setdefault(str(k), []).append(round(1000 * (time.monotonic() - t0), 3))
        return ok

    def _act_inner(self, k: int, reason: str) -> bool:
        if k == 1:  # tighter rates and holds are read from self.level by the pipeline
            return True
        if k == 2:
            self._close_ports(keep_io=True)
            return self.cutter.actuate(reason).ok if self.cutter is not None else True
        if k == 3:
            groups: list[CgroupV1 | CgroupV2] = [g for g in (self.v2, self.v1) if g is not None]
            power = CgroupPower(groups).actuate(reason)
            self._close_ports(keep_io=False)
            self.counters["frozen_then_killed"] += int(power.ok)
            return power.ok
        # Levels 4 and 5 act on the state directory; Deployment.escalate runs them (they must
        # hold with no supervisor running too). Here only the postcondition is checked.
        if k == 4:
            return True
        return True

    def _verify_state_levels(self, level: int) -> None:
        """Postconditions of L4/L5 (acted by Deployment.escalate): no decryption, a tombstone."""
        ok = True
        if level >= 4:
            ok = self.shredder.state() == "shredded" and (self.shredder._probe is None or
                                                          not self.shredder.can_decrypt(self.shredder._probe))
        if level >= 5:
            ok = ok and self.dep.tombstoned()
        if not ok:
            self.audit.append({"type": "postcondition_failed", "level": level})

    def _close_ports(self, keep_io: bool) -> None:
        if not keep_io:
            for c in list(self.port_conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)

    def _hold(self, msg: Message, payload: bytes) -> str:
        review = self.dep.root / "review"
        review.mkdir(exist_ok=True, mode=0o700)
        rid = f"r{int(time.time() * 1000)}-{msg.id}"
        (review / f"{rid}.msgpack").write_bytes(payload)
        return rid

    # --- threads ----------------------------------------------------------------------------
    def _accept_ports(self) -> None:
        assert self.port_srv is not None
        while not self.stop_event.is_set():
            try:
                conn, _ = self.port_srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        try:
            hello = msgpack.unpackb(read_frame(conn, 4096), raw=False)
        except (OSError, ConnectionError, FrameTooLarge, ValueError):
            conn.close()
            return
        if not isinstance(hello, dict) or hello.get("token") != self.token:
            self.audit.append({"type": "port_reject", "error": "bad hello"})
            conn.close()
            return
        if hello.get("role") == "ctl":
            self._serve_ctl(conn)
        else:
            self.port_conns.append(conn)
            self._serve_port(conn)

    def _serve_ctl(self, conn: socket.socket) -> None:
        while True:
            try:
                ev = msgpack.unpackb(read_frame(conn, 65536), raw=False)
            except (OSError, ConnectionError, FrameTooLarge, ValueError):
                if self.exit_info is None and not self.stop_event.is_set():
                    self.trigger("channel_lost", {"channel": "ctl"})
                return
            kind = ev.get("event") if isinstance(ev, dict) else None
            if self.exit_info is not None and "agent_exit" in self._ctl_seen:
                # g-init sends nothing after the agent's exit: a second "exit" (or anything
                # else) means someone else holds the channel -- forged.
                self.trigger("channel_lost", {"channel": "ctl", "error": f"event {kind!r} after exit"})
                return
            if kind == "armed" and "armed" not in self._ctl_seen:
                self._ctl_seen.add("armed")
                self.armed = ev
                if ev.get("notify"):
                    _, fds, _, _ = socket.recv_fds(conn, 1, 1)
                    threading.Thread(target=self._notify_loop, args=(fds[0],), daemon=True).start()
                self.audit.append({"type": "armed", **ev})
                self.startup_s = time.monotonic() - self.t_launch
            elif kind == "init_failed" and "armed" not in self._ctl_seen:
                self.audit.append({"type": "init_failed", "error": ev.get("error")})
                self.exit_info = {"code": 121, "signal": 0, "init_error": ev.get("error")}
            elif kind == "sigsys":  # a grandchild (reaped by g-init as subreaper) died by SIGSYS
                self.audit.append({"type": "sigsys", "pid": ev.get("pid")})
                self.trigger("sigsys", {"source": "g-init subreaper", "pid": ev.get("pid")})
            elif kind == "exit":
                self._ctl_seen.add("agent_exit")
                info = {"code": ev.get("code"), "signal": ev.get("signal")}
                self.audit.append({"type": "agent_exit", **info})
                if ev.get("signal") == 31:  # SIGSYS: seccomp killed the agent
                    self.trigger("sigsys", {"source": "g-init wait status"})
                self.exit_info = info
            else:
                self.trigger("channel_lost", {"channel": "ctl", "error": f"unexpected event {kind!r}"})
                return

    def _notify_loop(self, fd: int) -> None:
        listener = NotifyListener(fd)
        try:
            while not self.stop_event.is_set():
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    continue
                ev = listener.handle_one()
                if ev is None:
                    r2, _, _ = select.select([fd], [], [], 0)
                    if r2 and self.proc is not None and self.proc.poll() is not None:
                        return
                    continue
                self.counters["socket_denied"] += 1
                if ev.family == socket.AF_UNIX and not ev.abstract:
                    # Denied all the same (ports are pre-connected), but a local UNIX connect
                    # (glibc's nscd lookup from getpwuid, syslog) is not a network attempt.
                    self.counters["unix_connect_denied"] += 1
                    self.audit.append({"type": "unix_connect_denied", "pid": ev.pid})
                    continue
                self.trigger("socket_attempt", {"syscall": ev.syscall, "family": ev.family,
                                                "abstract": ev.abstract})
        finally:
            listener.close()

    def _serve_port(self, conn: socket.socket) -> None:
        while not self.stop_event.is_set():
            try:
                payload = read_frame(conn, self.policy.max_frame_bytes)
            except FrameTooLarge as exc:
                head = exc.args[1] if len(exc.args) > 1 else b""
                self.pipeline.reject(exc, head)
                self.trigger("malformed_input", {"error": "FrameTooLarge"})
                conn.close()
                return
            except (OSError, ConnectionError):
                conn.close()
                return
            try:
                delivery = self.pipeline.process(payload)
                body = self._dispatch(delivery)
                reply: dict[str, Any] = {"v": 1, "id": delivery.message.id, "ok": True, "body": body}
            except AuditError as exc:  # audit before action: no record, no delivery
                self.trigger("audit_write_failure", {"error": str(exc)})
                reply = {"v": 1, "id": _peek_id(payload), "ok": False,
                         "error": {"type": "AuditError", "message": "audit log unavailable"}}
            except PortError as exc:
                if isinstance(exc, SchemaError) or type(exc).__name__ in ("MalformedMessage", "UnknownPort"):
                    self.trigger("malformed_input", {"error": type(exc).__name__})
                reply = {"v": 1, "id": _peek_id(payload), "ok": False,
                         "error": {"type": type(exc).__name__, "message": str(exc)}}
            except Exception as exc:  # any other failure on one message must not end the port thread
                self.counters["port_handler_error"] += 1
                with contextlib.suppress(Exception):
                    self.audit.append({"type": "port_handler_error", "error": type(exc).__name__,
                                       "message": str(exc)[:200]})
                with contextlib.suppress(Exception):
                    self.trigger("malformed_input", {"error": type(exc).__name__})
                reply = {"v": 1, "id": _peek_id(payload), "ok": False,
                         "error": {"type": "SchemaError", "message": f"malformed body ({type(exc).__name__})"}}
            try:
                write_frame(conn, reply)
            except OSError:
                return

    def _dispatch(self, d: Delivery) -> Any:
        msg = d.message
        body = msg.body if isinstance(msg.body, dict) else {}
        if msg.port == "io" and msg.op == "next":
            timeout = body.get("timeout", 30)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
                    not 0 <= timeout <= MAX_NEXT_TIMEOUT_S:
                raise SchemaError(f"io.next timeout must be a number in [0, {MAX_NEXT_TIMEOUT_S:g}] s")
            try:
                rid, prompt = self.prompts.get(timeout=float(timeout))
            except queue.Empty:
                return None
            return {"req": rid, "input": prompt}
        if msg.port == "io" and msg.op == "reply":
            req = body.get("req")
            if isinstance(req, bool) or not isinstance(req, int):
                raise SchemaError("io.reply req must be an integer")
            waiter = self.waiters.get(req)
            if waiter is None:
                raise SchemaError("reply to an unknown request")
            waiter.put({"output": body.get("output"), "attest": d.attest, "sig": d.signature})
            return {"delivered": True}
        if msg.port == "http":
            url = body.get("url", "")
            if not isinstance(url, str):
                raise SchemaError("http url must be a string")
            hostport = url.split("://", 1)[-1].split("/", 1)[0]
            allowed = set(self.policy.http_allowlist) | ({self.egress.allow_entry} if self.egress else set())
            if hostport not in allowed:
                self.counters["http_not_allowed"] += 1
                raise PortClosed(f"{hostport!r} is not on the allowlist")
            out: queue.Queue[Any] = queue.Queue()
            self.egress_q.put(((msg.op, url, body.get("data"), d), out))
            res = out.get(timeout=10)
            if isinstance(res, Exception):
                raise PortClosed(f"fetch failed: {res}")
            return res
        if msg.port == "fs":
            return self._fs(msg.op, body)
        name = body.get("name")
        fn = _TOOLS.get(name) if isinstance(name, str) else None
        if fn is None:
            raise SchemaError(f"unknown tool {str(name)[:64]!r}; known: {', '.join(_TOOLS)}")
        args = body.get("args", [])
        args = args if isinstance(args, list) else [args]
        if name == "add" and not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in args):
            raise SchemaError("tool add takes numbers only")
        with open(self.run_dir / "tool_calls.jsonl", "a") as log:  # ground truth for the red team
            log.write(json.dumps({"name": name, "args": repr(args)}) + "\n")
        return {"result": fn(args)}

    def _fs(self, op: str, body: dict[str, Any]) -> Any:
        """The artifact port: ``write`` stores (encrypted, quota'd); ``read`` returns stored bytes, never writes."""
        name = body.get("name", "")
        if not isinstance(name, str) or not name.isidentifier() or len(name) > MAX_FS_NAME:
            raise SchemaError(f"fs name must be an identifier of at most {MAX_FS_NAME} characters")
        path = self.dep.root / "artifacts" / f"{name}.enc"
        if op == "read":
            if not path.is_file():
                raise SchemaError(f"no artifact {name!r}")
            blob = path.read_bytes()
            if len(blob) > self.policy.fs_quota_bytes + 64:
                raise PortClosed("artifact larger than the fs quota")
            try:
                data = self.shredder.decrypt(blob)
            except Exception:  # shredded key or tampered blob
                raise PortClosed(f"artifact {name!r} cannot be decrypted") from None
            return {"name": name, "data": data}
        if op != "write":
            raise SchemaError(f"fs op must be 'read' or 'write', not {str(op)[:32]!r}")
        data = body.get("data", b"")
        if not isinstance(data, bytes) or self.fs_used + len(data) > self.policy.fs_quota_bytes:
            self.trigger("quota", {"port": "fs", "used": self.fs_used})
            raise PortClosed("fs quota exceeded")
        self.fs_used += len(data)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        path.write_bytes(self.shredder.encrypt(data))
        return {"stored": name, "bytes": len(data)}

    def _egress_worker(self) -> None:
        if self.egress is None:
            return
        self.egress.enter()
        while not self.stop_event.is_set():
            try:
                (op, url, data, d), out = self.egress_q.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                status, resp = fetch("POST" if op == "post" else "GET", url, data if isinstance(data, bytes) else None,
                                     {"X-Guillotine-Attest": json.dumps({**d.attest, "sig": d.signature})}, 65536)
                out.put({"status": status, "body": resp})
            except Exception as exc:  # any network failure becomes a port error
                out.put(exc)

    def _accept_operator(self) -> None:
        assert self.op_srv is not None
        while not self.stop_event.is_set():
            try:
                conn, _ = self.op_srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_operator, args=(conn,), daemon=True).start()

    def _serve_operator(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    req = msgpack.unpackb(read_frame(conn, 64 << 20), raw=False)
                except (OSError, ConnectionError, ValueError):
                    return
                op = req.get("op") if isinstance(req, dict) else None
                try:
                    if op == "infer":
                        rep = self._infer(req.get("body"), float(req.get("timeout", 60)))
                    elif op == "status":
                        rep = self.status()
                    elif op == "escalate":
                        rep = {"level": self.trigger_operator(req["level"], str(req.get("reason", "operator")))}
                    elif op == "stop":
                        self.stop_event.set()
                        rep = {"stopping": True}
                    else:
                        rep = {"error": f"unknown op {op!r}"}
                except (PortError, GuillotineError, ConfigError, ValueError, KeyError, TypeError) as exc:
                    rep = {"error": f"{type(exc).__name__}: {exc}"}
                try:
                    write_frame(conn, rep)
                except OSError:
                    return

    def _infer(self, body: Any, timeout: float) -> dict[str, Any]:
        if self.level >= 3:
            raise PortClosed(f"level {self.level}: the sandbox is offline")
        rid = secrets.randbelow(1 << 62)
        waiter: queue.Queue[dict[str, Any]] = queue.Queue()
        self.waiters[rid] = waiter
        self.prompts.put((rid, body))
        try:
            return waiter.get(timeout=timeout)
        except queue.Empty:
            raise PortClosed(f"no reply within {timeout:g} s (level {self.level})") from None
        finally:
            self.waiters.pop(rid, None)

    def trigger_operator(self, level: int, reason: str) -> int:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= LAST_LEVEL:
            raise ConfigError("level", level, f"must be an integer in [0, {LAST_LEVEL}]")
        t0 = time.monotonic()
        with self.lock:
            if level > self.level:
                reached = self._enforce(level, reason)
                self.contain_ms.append(1000 * (self.t_contained - t0))
                self.dep.escalate(reached, f"operator: {reason}")
                self._verify_state_levels(reached)
            return self.level

    def _pulse(self) -> None:
        """The watchdog's heartbeat, on a thread that takes no lock (enforcement never delays it)."""
        period = self.policy.heartbeat_ms / 1000.0
        while not self.stop_event.wait(period):
            sock = self.watchdog_sock
            if sock is None:
                continue
            try:
                sock.sendall(b"h")
            except OSError:
                self.watchdog_sock = None
                threading.Thread(target=self.trigger, args=("heartbeat_lost", {"peer": "watchdog socket"}),
                                 daemon=True).start()

    def _heartbeat(self) -> None:
        """Every heartbeat period: watchdog liveness, the signed level file, cgroup counters, status."""
        period = self.policy.heartbeat_ms / 1000.0
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            next_t += period
            if self.watchdog_pidfd >= 0:
                r, _, _ = select.select([self.watchdog_pidfd], [], [], 0)
                if r and self.watchdog_sock is not None and not self.stop_event.is_set():
                    self.trigger("heartbeat_lost", {"peer": "watchdog died"})
                    self.watchdog_sock = None
            file_level = self.dep.level()
            if file_level.level > self.level:  # an operator or the watchdog raised it
                with self.lock:
                    self._enforce(file_level.level, file_level.reason)
            self._check_counters()
            self._write_status()
            self.stop_event.wait(max(0.0, next_t - time.monotonic()))

    def _check_counters(self) -> None:
        """OOM kills and pids.max hits of the v1 cgroup are triggers (L3)."""
        if self.v1 is None:
            return
        c = self.v1.counters()
        if c.get("oom_kill", 0) > self._last_counters.get("oom_kill", 0):
            self.trigger("oom", dict(c))
        if c.get("pids_max_events", 0) > self._last_counters.get("pids_max_events", 0):
            self.trigger("pids_max", dict(c))
        self._last_counters = c

    def status(self) -> dict[str, Any]:
        return {
            "deployment": self.dep.name, "mode": self.mode, "level": self.level,
            "level_name": self.policy.level_names[self.level], "measurement": self.measurement,
            "counters": dict(self.counters), "pipeline": dict(self.pipeline.counters),
            "contain_ms": list(self.contain_ms), "act_ms": dict(self.act_ms), "events": list(self.events[-50:]),
            "exit": self.exit_info, "armed": self.armed, "startup_s": self.startup_s,
            "cpus": {"hypervisor": list(self.topology.hypervisor_cpus), "sandbox": list(self.topology.sandbox_cpus),
                     "l3_shared": self.topology.l3_shared},
            "out_of_scope": ["shared-L3 timing channels (rdtsc stays untrapped: PR_SET_TSC crashes Python)"],
            "cgroup": {"v1": self.v1.state() if self.v1 else None, "v2": self.v2.state() if self.v2 else None,
                       "procs": self.v1.procs() if self.v1 else []},
            "egress": self.cutter.state() if self.cutter else None,
            "watchdog_pid": self.watchdog_pid, "supervisor_pid": os.getpid(),
        }

    def _write_status(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            tmp = self.run_dir / "status.json.tmp"
            tmp.write_bytes(canonical(self.status()))
            tmp.replace(self.run_dir / "status.json")

    # --- main loop and shutdown -------------------------------------------------------------
    def serve(self) -> int:
        assert self.proc is not None
        tmp = self.run_dir / "ready.tmp"
        tmp.write_text(json.dumps({"supervisor_pid": os.getpid(), "sandbox_pid": self.proc.pid,
                                   "watchdog_pid": self.watchdog_pid}))
        tmp.replace(self.run_dir / "ready")
        while not self.stop_event.is_set() and self.proc.poll() is None:
            self.stop_event.wait(0.05)
        code = self.proc.poll()
        deadline = time.monotonic() + 1.0
        while self.exit_info is None and code is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # NOTE: bounded wait for g-init's exit report on the ctl channel
        self._check_counters()
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        with self.lock:  # let an in-flight trigger finish before tearing down
            self.stop_event.set()
        if self.watchdog_sock is not None:
            with contextlib.suppress(OSError):
                self.watchdog_sock.sendall(b"B")
        for g in (self.v1, self.v2):
            if g is not None:
                g.destroy()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        for srv in (self.port_srv, self.op_srv):
            if srv is not None:
                with contextlib.suppress(OSError):
                    srv.close()
        if self.egress is not None:
            self.egress.destroy()
        self._write_status()
        self.audit.append({"type": "close", "exit": self.exit_info, "level": self.level}, checkpoint=True)


def _peek_id(payload: bytes) -> int:
    with contextlib.suppress(Exception):
        obj = msgpack.unpackb(payload, raw=False)
        if isinstance(obj, dict) and isinstance(obj.get("id"), int):
            return int(obj["id"])
    return -1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    plan = json.loads(Path(args[0]).read_text())
    sup = Supervisor(plan)
    try:
        sup.start()
    except Exception as exc:
        (Path(plan["runtime_dir"]) / "failed").write_text(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            sup.shutdown()
        return 1
    return sup.serve()


if __name__ == "__main__":
    sys.exit(main())
