"""`ops rehearse --config PATH [--graph NAME]`: a graph's topology on this machine, smoked.

Runs real Dynamo (the version pinned in config/versions.py, from .venv-dynamo): the
frontend with the router mode the graph's CR gets, and one `dynamo.mocker` per worker
replica with the graph's roles (prefill/decode for disaggregated topologies), on 127.0.0.1
with a generated tiny model. Then `ops smoke` runs against it and everything is stopped,
also on Ctrl-C or failure. The mocker simulates the engine, so this checks wiring
(discovery, routing, disaggregation, the OpenAI API), not GPU sizing (`make plan` does that).

With --keep the graph stays up after a passing smoke test, on the host's 127.0.0.1 (never in
a private network namespace, so curl and `make smoke URL=...` reach it), until Ctrl-C or
SIGTERM stops every process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops.cli import UsageError
from ops.local_dynamo import REPO, LocalDynamo, LocalDynamoError, LocalGraph, Role

# A worker role's disaggregation mode (None: aggregated) -> its local process role.
_LOCAL_ROLES: dict[str | None, Role] = {None: "agg", "prefill": "prefill", "decode": "decode"}

# Local processes register in seconds; a minute covers a slow first import.
READY_WAIT_SECONDS = 90


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")
    parser.add_argument("--graph", help="graph to rehearse (default: the config's first graph)")
    parser.add_argument(
        "--requests",
        type=int,
        default=5,
        help="streamed requests for the latency report (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the work folder (model, discovery, process logs) afterwards",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the smoke test, keep the graph running on 127.0.0.1 (prints "
        "its URL, a curl and a `make smoke` line) until Ctrl-C",
    )


def local_graph(graph) -> LocalGraph:
    """The local shape of a configured graph: same router mode and worker roles as its CR."""
    workers: list[Role] = []
    for role in graph.worker_roles():
        workers += [_LOCAL_ROLES[role.disaggregation_mode]] * role.config.replicas
    return LocalGraph(
        name=graph.name,
        served_model_name=graph.model_name,
        router_mode="kv" if graph.kv_routed else None,
        workers=tuple(workers),
    )


def select_graph(cfg, name: str | None, config_path: str):
    graphs = list(cfg.graphs)
    if not graphs:
        raise UsageError(f"{config_path} defines no graphs; add one under graphs: to rehearse it")
    if name is None:
        return graphs[0]
    for graph in graphs:
        if graph.name == name:
            return graph
    raise UsageError(
        f"graph '{name}' is not in {config_path}; graphs there: {', '.join(g.name for g in graphs)}"
    )


def run(args: argparse.Namespace) -> int:
    from plan import load_config

    cfg = load_config(args.config)
    graph = local_graph(select_graph(cfg, args.graph, args.config))
    workdir = Path(tempfile.mkdtemp(prefix=f"rehearse-{graph.name}-"))
    print(f"rehearsal: {graph.describe()}", flush=True)
    # SIGTERM (CI timeouts, `kill`) must tear down like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return rehearse(graph, workdir, requests=args.requests, keep=args.keep)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if args.keep_logs:
            print(f"work folder kept: {workdir}")
        else:
            _remove(workdir)


def rehearse(
    graph: LocalGraph, workdir: Path, *, requests: int = 5, isolate: bool | None = None, keep: bool = False
) -> int:
    # A graph kept for the user must be reachable from the host: no private namespace.
    dynamo = LocalDynamo(graph, workdir, isolate=False if keep else isolate)
    try:
        dynamo.start()
        where = "a private network namespace" if dynamo.isolate else "the host's loopback"
        print(
            f"started {1 + len(graph.workers)} Dynamo processes in {where}; frontend {dynamo.url}", flush=True
        )
        smoke = dynamo.netns_command(
            [
                sys.executable,
                "-m",
                "ops",
                "smoke",
                "--url",
                dynamo.url,
                "--model",
                graph.served_model_name,
                "--requests",
                str(requests),
                "--wait",
                str(READY_WAIT_SECONDS),
            ]
        )
        code = _run_watched(smoke, dynamo)
        if code != 0 or not keep:
            return code
        return _keep_running(dynamo, workdir)
    except LocalDynamoError as err:
        print(f"rehearsal failed: {err}", file=sys.stderr)
        return 1
    finally:
        dynamo.stop()
        print("stopped all Dynamo processes", flush=True)


def _run_watched(command: list[str], dynamo: LocalDynamo) -> int:
    """Run smoke; if a Dynamo process dies meanwhile, stop smoke and report that process."""
    smoke = subprocess.Popen(command, cwd=REPO)
    try:
        while smoke.poll() is None:
            dynamo.check_alive()
            time.sleep(0.2)
        return smoke.returncode
    finally:
        if smoke.poll() is None:
            smoke.terminate()
            smoke.wait()


def _keep_running(dynamo: LocalDynamo, workdir: Path) -> int:
    """Print how to use and stop the running graph; wait for Ctrl-C/SIGTERM (exit 0)."""
    body = json.dumps(
        {
            "model": dynamo.graph.served_model_name,
            "messages": [{"role": "user", "content": "Hello"}],
            "max_tokens": 16,
        }
    )
    print(
        f"\nlocal graph '{dynamo.graph.name}' is up at {dynamo.url}\n"
        f"  curl -s {dynamo.url}/v1/chat/completions -H 'Content-Type: application/json' "
        f"-d '{body}'\n"
        f"  make smoke URL={dynamo.url}\n"
        f"  logs: {workdir / 'logs'}\n"
        f"stop it with Ctrl-C (or kill {os.getpid()}); every process is stopped",
        flush=True,
    )
    try:
        while True:
            dynamo.check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping", flush=True)
        return 0


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
