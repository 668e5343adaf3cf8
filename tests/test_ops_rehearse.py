"""`ops rehearse`: graph -> local topology, and the process lifecycle (nothing left behind)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from config.graphs import GraphConfig
from ops.cli import UsageError
from ops.local_dynamo import LocalDynamo, LocalDynamoError, LocalGraph, can_isolate
from ops.rehearse import local_graph, select_graph
from tests.ops_dynamo_support import (
    REPO,
    SERVED_MODEL,
    mocker_config,
    processes_under,
    require_dynamo_venv,
    run_ops,
)

pytestmark = pytest.mark.xdist_group("dynamo")


def graph(**fields) -> GraphConfig:
    return GraphConfig.model_validate({"name": "g", "model": "org/model", "node_pool": "gpu", **fields})


# -- graph -> local topology --------------------------------------------------------------


def test_agg_router_runs_kv_router_and_one_mocker_per_replica():
    local = local_graph(graph(topology="agg_router", worker={"replicas": 3}, served_model_name="chat"))
    assert local == LocalGraph("g", "chat", "kv", ("agg", "agg", "agg"))


def test_disagg_runs_prefill_and_decode_roles_without_kv_router():
    local = local_graph(graph(topology="disagg", prefill={"replicas": 2}, decode={"replicas": 1}))
    assert (local.router_mode, local.workers) == (None, ("prefill", "prefill", "decode"))
    assert local.served_model_name == "org/model"


def test_multinode_gets_one_mocker_per_replica_whatever_the_node_count():
    local = local_graph(
        graph(
            topology="multinode",
            prefill={"replicas": 1, "nodes": 2, "tensor_parallel_size": 16},
            decode={"replicas": 2, "nodes": 2, "tensor_parallel_size": 16},
        )
    )
    assert (local.router_mode, local.workers) == (None, ("prefill", "decode", "decode"))


def test_select_graph_names_the_known_graphs(tmp_path):
    from plan import load_config

    path = mocker_config(tmp_path)
    cfg = load_config(path)
    assert select_graph(cfg, None, str(path)).name == "smoke-agg"
    with pytest.raises(UsageError, match="graph 'nope' is not in .*smoke-agg, smoke-agg-router"):
        select_graph(cfg, "nope", str(path))


# -- real Dynamo: the whole command and its lifecycle --------------------------------------


@pytest.fixture()
def config_path(tmp_path):
    require_dynamo_venv()
    return mocker_config(tmp_path)


def test_rehearse_prints_a_passing_smoke_report_and_cleans_up(config_path, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = run_ops(
        ["rehearse", "--config", str(config_path), "--graph", "smoke-disagg", "--requests", "2"],
        env={"TMPDIR": str(work)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "frontend (router round-robin) + 1 prefill, 2 decode mocker worker(s)" in result.stdout
    assert "smoke passed: 8 checks" in result.stdout
    assert result.stdout.rstrip().endswith("stopped all Dynamo processes")
    assert processes_under(work) == []
    assert list(work.iterdir()) == []  # work folder removed


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_interrupted_rehearsal_stops_every_process(config_path, tmp_path, sig, code):
    work = tmp_path / "work"
    work.mkdir()
    # Many latency requests: long enough that the signal lands mid-smoke; unique per case so
    # a parallel case's smoke process is never mistaken for a leftover of this one.
    marker = str(9000 + int(sig))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops",
            "rehearse",
            "--config",
            str(config_path),
            "--graph",
            "smoke-agg-router",
            "--requests",
            marker,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": str(work)},
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "PASS  completion" in line:
            break
    assert processes_under(work), "".join(seen)
    process.send_signal(sig)
    rest = process.communicate(timeout=60)[0]
    assert process.returncode == code, "".join(seen) + rest
    assert "stopped all Dynamo processes" in rest
    assert processes_under(work) == []
    # The smoke child gets the signal from its group; give the kernel a moment to reap it.
    _wait_until(
        lambda: (
            not [cmd for cmd in _all_cmdlines() if "-m ops smoke " in cmd and f"--requests {marker}" in cmd]
        )
    )


def test_keep_serves_on_the_printed_url_until_ctrl_c_and_leaves_nothing(config_path, tmp_path):
    """`make rehearse KEEP=1`: the printed URL answers, Ctrl-C stops everything (exit 0).

    --keep serves on the host's loopback; as root the whole run gets its own network
    namespace here (and the URL is polled inside it), so nothing binds the real NICs.
    """
    work = tmp_path / "work"
    work.mkdir()
    command = [
        sys.executable,
        "-m",
        "ops",
        "rehearse",
        "--config",
        str(config_path),
        "--graph",
        "smoke-agg",
        "--requests",
        "1",
        "--keep",
    ]
    if can_isolate():
        command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": str(work)},
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("stop it with Ctrl-C"):
            break
    out = "".join(seen)
    assert "smoke passed" in out, out
    url = re.search(r"local graph 'smoke-agg' is up at (http://127\.0\.0\.1:\d+)", out)
    assert url, out
    assert f"  curl -s {url[1]}/v1/chat/completions" in out
    assert f"  make smoke URL={url[1]}\n" in out
    prefix = ["nsenter", f"--net=/proc/{process.pid}/ns/net", "--"] if can_isolate() else []
    probe = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            f"import urllib.request; print(urllib.request.urlopen('{url[1]}/v1/models').read())",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert SERVED_MODEL in probe.stdout, probe.stdout + probe.stderr
    assert processes_under(work)
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[0]
    assert process.returncode == 0, out + rest
    assert "stopped all Dynamo processes" in rest
    assert processes_under(work) == []
    assert list(work.iterdir()) == []


def test_dead_worker_is_reported_with_its_log_and_the_group_is_stopped(tmp_path):
    require_dynamo_venv()
    dynamo = LocalDynamo(LocalGraph("g", SERVED_MODEL, None, ("agg",)), tmp_path)
    with dynamo:
        mocker = dynamo._processes[1]
        os.kill(mocker.popen.pid, signal.SIGKILL)
        mocker.popen.wait()
        with pytest.raises(
            LocalDynamoError,
            match=r"mocker-0-agg exited with code -9; last "
            r"lines of .*mocker-0-agg\.log",
        ):
            dynamo.check_alive()
    assert processes_under(tmp_path) == []


def test_processes_die_with_a_killed_parent(tmp_path):
    """SIGKILL gives no chance to clean up; PR_SET_PDEATHSIG still takes the group down."""
    require_dynamo_venv()
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from ops.local_dynamo import LocalDynamo, LocalGraph
        dynamo = LocalDynamo(LocalGraph("g", "m/x", None, ("agg",)), Path({str(tmp_path)!r}))
        dynamo.start()
        print("started", flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "started"
    assert len(processes_under(tmp_path)) == 3  # leader + frontend + mocker
    parent.kill()
    parent.wait()
    parent.stdout.close()
    _wait_until(lambda: processes_under(tmp_path) == [])


@pytest.mark.skipif(not can_isolate(), reason="needs root for a private network namespace")
def test_without_isolation_a_free_port_on_the_host_loopback_is_used(tmp_path):
    """The non-root path, exercised inside an outer namespace so nothing binds real NICs."""
    require_dynamo_venv()
    script = textwrap.dedent(f"""
        import subprocess, sys
        from pathlib import Path
        from ops.local_dynamo import LocalDynamo, LocalGraph
        graph = LocalGraph("g", "m/x", "kv", ("agg",))
        with LocalDynamo(graph, Path({str(tmp_path)!r}), isolate=False) as dynamo:
            assert dynamo.netns_command(["x"]) == ["x"]
            code = subprocess.call([sys.executable, "-m", "ops", "smoke", "--url", dynamo.url,
                                    "--requests", "1", "--wait", "90"])
        sys.exit(code)
    """)
    result = subprocess.run(
        [
            "unshare",
            "--net",
            "--",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" -c "$1"',
            sys.executable,
            script,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke passed" in result.stdout
    assert processes_under(tmp_path) == []


def _all_cmdlines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return found


def _wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_dynamo_venv_pins_every_package_and_the_deployed_dynamo_version():
    from config import versions

    pins = {}
    for raw in (REPO / "requirements-dynamo.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"not pinned: {line}"  # installed with --no-deps: nothing may float
            pins[name.lower()] = version
    assert pins["ai-dynamo"] == pins["ai-dynamo-runtime"] == versions.DYNAMO
    assert "tokenizers" in pins  # ops/tiny_model.py


def test_installed_dynamo_is_the_pinned_release():
    from config import versions

    require_dynamo_venv()
    for module in ("dynamo.frontend", "dynamo.mocker"):
        result = subprocess.run(
            [str(REPO / ".venv-dynamo/bin/python"), "-m", module, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert versions.DYNAMO in result.stdout + result.stderr
