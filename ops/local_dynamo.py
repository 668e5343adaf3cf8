"""Run a graph's topology on this machine with real Dynamo: one frontend, mocker workers.

Used by `ops rehearse` and by the real-Dynamo smoke tests. Every process joins one process
group that `stop()` always kills (also after Ctrl-C or a failure), and each child gets
PR_SET_PDEATHSIG so even a SIGKILLed parent leaves nothing behind.

As root, everything runs in a private network namespace (`unshare --net`, loopback only):
the mocker's ZMQ sockets bind 0.0.0.0 whatever we ask, and nothing should listen on the
machine's real interfaces. Clients reach the frontend with `netns_command()` (nsenter).
Without root the processes share the host's loopback and the frontend gets a free port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parents[1]
DYNAMO_VENV = REPO / ".venv-dynamo"
FRONTEND_PORT = 8000
# The Kubernetes-free way for frontend and workers to find each other: a shared folder.
DISCOVERY = ("--discovery-backend", "file", "--request-plane", "tcp")
DYNAMO_NAMESPACE = "dynamo"
STOP_GRACE_SECONDS = 5.0
# The frontend binds its HTTP port after its imports: seconds, a minute on a slow first run.
LISTEN_WAIT_SECONDS = 90.0

Role = Literal["agg", "prefill", "decode"]
# Dynamo colors its logs whatever the terminal; failure reports quote them without codes.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class LocalDynamoError(Exception):
    """A local Dynamo process could not start or died; the message names its log."""


@dataclass(frozen=True)
class LocalGraph:
    """What a local run needs from a graph: served name, router mode, worker roles."""

    name: str
    served_model_name: str
    # None: the frontend's default (round-robin), as in a CR without DYN_ROUTER_MODE.
    router_mode: str | None
    workers: tuple[Role, ...]

    def describe(self) -> str:
        counts = {role: self.workers.count(role) for role in ("agg", "prefill", "decode")}
        parts = [f"{n} {role}" for role, n in counts.items() if n]
        return (
            f"graph '{self.name}': frontend (router {self.router_mode or 'round-robin'}) + "
            f"{', '.join(parts)} mocker worker(s) serving '{self.served_model_name}'"
        )


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen
    log: Path


def dynamo_python() -> Path:
    python = DYNAMO_VENV / "bin" / "python"
    if not python.exists():
        from ops.cli import UsageError

        raise UsageError(f"{python} not found; install Dynamo {_dynamo_version()} with `make dynamo-venv`")
    return python


def _dynamo_version() -> str:
    from config import versions

    return versions.DYNAMO


def can_isolate() -> bool:
    """A private network namespace needs root (CAP_SYS_ADMIN) and util-linux tools."""
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip"))


def _die_with_parent() -> None:
    # prctl(PR_SET_PDEATHSIG, SIGKILL): survives exec, so it also covers nsenter'd commands.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalDynamo:
    """Context manager: `with LocalDynamo(graph, workdir) as dynamo: dynamo.url ...`."""

    def __init__(
        self,
        graph: LocalGraph,
        workdir: Path,
        *,
        isolate: bool | None = None,
        python: Path | None = None,
    ) -> None:
        self.graph = graph
        self.workdir = Path(workdir)
        self.isolate = can_isolate() if isolate is None else isolate
        self.python = python or dynamo_python()
        self.port = FRONTEND_PORT if self.isolate else _free_port()
        self._leader: subprocess.Popen | None = None
        self._processes: list[_Process] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pgid(self) -> int:
        if self._leader is None:
            raise LocalDynamoError("local Dynamo is not running")
        return self._leader.pid

    def netns_command(self, command: list[str]) -> list[str]:
        """`command` as run inside the processes' network namespace (unchanged without one)."""
        if not self.isolate:
            return list(command)
        return ["nsenter", f"--net=/proc/{self.pgid}/ns/net", "--", *command]

    def __enter__(self) -> LocalDynamo:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        model = self.workdir / "model"
        subprocess.run(
            [str(self.python), "-m", "ops.tiny_model", str(model)],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self._start_leader()
        env = self._environment()
        frontend = [
            "-m",
            "dynamo.frontend",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            "--namespace",
            DYNAMO_NAMESPACE,
            *DISCOVERY,
        ]
        if self.graph.router_mode:
            frontend += ["--router-mode", self.graph.router_mode]
        self._spawn("frontend", frontend, env)
        for index, role in enumerate(self.graph.workers):
            self._spawn(
                f"mocker-{index}-{role}",
                [
                    "-m",
                    "dynamo.mocker",
                    "--model-path",
                    str(model),
                    "--model-name",
                    self.graph.served_model_name,
                    "--disaggregation-mode",
                    role,
                    *DISCOVERY,
                ],
                env,
            )
        self.wait_listening()

    def wait_listening(self, timeout: float = LISTEN_WAIT_SECONDS) -> None:
        """Return once the frontend accepts connections (clients never see a refused port).

        Read from /proc/<leader>/net/tcp, the listening sockets of the processes' network
        namespace, so it works the same with or without isolation.
        """
        deadline = time.monotonic() + timeout
        while not _listening(self.pgid, self.port):
            self.check_alive()
            if time.monotonic() >= deadline:
                raise LocalDynamoError(
                    f"frontend did not listen on port {self.port} within {timeout:.0f}s; last "
                    f"lines of its log:\n{self.log_tail(self.workdir / 'logs' / 'frontend.log')}"
                )
            time.sleep(0.1)

    def _start_leader(self) -> None:
        """A sleeping process that owns the process group (and the network namespace)."""
        script = "echo ready; exec sleep 2147483647"
        command = ["sh", "-c", script]
        if self.isolate:
            command = ["unshare", "--net", "--", "sh", "-c", f"ip link set lo up && {script}"]
        leader = self._leader = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.workdir,
            process_group=0,
            preexec_fn=_die_with_parent,
        )
        assert leader.stdout is not None and leader.stderr is not None  # both piped
        line = leader.stdout.readline().strip()
        if line != b"ready":
            error = leader.stderr.read().decode(errors="replace").strip()
            raise LocalDynamoError(f"could not create the process group: {error or 'no output'}")

    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DYN_")}
        env.pop("VIRTUAL_ENV", None)
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        env.update(
            # Dynamo leaves temporary logging configs behind; keep them in the work folder.
            TMPDIR=str(tmp),
            DYN_FILE_KV=str(self.workdir / "discovery"),
            DYN_NAMESPACE=DYNAMO_NAMESPACE,
            DYN_LOG="info",
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
        )
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = self.workdir / "logs" / f"{name}.log"
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                self.netns_command([str(self.python), *args]),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                process_group=self.pgid,
                preexec_fn=_die_with_parent,
            )
        self._processes.append(_Process(name, popen, log))

    def check_alive(self) -> None:
        """Raise with the log tail of the first Dynamo process that has exited."""
        for process in self._processes:
            code = process.popen.poll()
            if code is not None:
                raise LocalDynamoError(
                    f"{process.name} exited with code {code}; last lines of {process.log}:\n"
                    + self.log_tail(process.log)
                )

    @staticmethod
    def log_tail(path: Path, lines: int = 15) -> str:
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "\n".join(_ANSI.sub("", line) for line in text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after a grace period."""
        if self._leader is None:
            return
        pgid = self._leader.pid
        popens = [self._leader, *(p.popen for p in self._processes)]
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for popen in popens:
            try:
                popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
        _signal_group(pgid, signal.SIGKILL)
        for popen in popens:
            popen.wait()
        for stream in (self._leader.stdout, self._leader.stderr):
            if stream:
                stream.close()
        _wait_group_gone(pgid)
        self._leader = None
        self._processes = []


def _listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on `port` in the network namespace of process `pid`."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, timeout: float = 5.0) -> None:
    """Grandchildren (if any) are reparented to init when killed; wait until they are reaped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    print(f"warning: processes of group {pgid} still exist after SIGKILL", file=sys.stderr)
