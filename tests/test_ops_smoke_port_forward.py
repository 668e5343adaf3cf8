"""`ops smoke --graph NAME --port-forward`: kubectl's lifecycle, with a fake kubectl on PATH."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.cli import UsageError
from ops.local_dynamo import LocalDynamo
from ops.rehearse import local_graph, select_graph
from ops.smoke import port_forward
from plan import load_config
from tests.ops_dynamo_support import REPO, mocker_config, require_dynamo_venv

pytestmark = pytest.mark.xdist_group("dynamo")

FAKE_KUBECTL = """#!{python}
import os, sys, time
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(f"{{os.getpid()}} {{' '.join(sys.argv[1:])}}\\n")
if os.environ.get("FAKE_KUBECTL_FAIL"):
    print('error: services "x-frontend" not found', file=sys.stderr, flush=True)
    sys.exit(1)
print(f"Forwarding from 127.0.0.1:{{os.environ['FAKE_KUBECTL_PORT']}} -> 8000", flush=True)
print(f"Forwarding from [::1]:{{os.environ['FAKE_KUBECTL_PORT']}} -> 8000", flush=True)
time.sleep(600)
"""


@pytest.fixture()
def kubectl(tmp_path, monkeypatch):
    """A kubectl that logs `pid args`, prints kubectl's forwarding line, then blocks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text(FAKE_KUBECTL.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(log))
    monkeypatch.setenv("FAKE_KUBECTL_PORT", "18123")
    return log


def calls(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(pid), args) for pid, args in (line.split(" ", 1) for line in log.read_text().splitlines())]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_port_forward_targets_the_frontend_service_and_always_stops(kubectl):
    with pytest.raises(RuntimeError, match="boom"), port_forward("dynamo", "g-frontend", 8000) as url:
        assert url == "http://127.0.0.1:18123"
        [(pid, args)] = calls(kubectl)
        assert args == "port-forward --namespace dynamo svc/g-frontend :8000 --address 127.0.0.1"
        assert alive(pid)
        raise RuntimeError("boom")
    assert not alive(pid)


def test_kubectl_error_is_one_line_with_the_fix(kubectl, monkeypatch):
    monkeypatch.setenv("FAKE_KUBECTL_FAIL", "1")
    with pytest.raises(UsageError) as err, port_forward("dynamo", "x-frontend", 8000):
        pytest.fail("must not yield")
    message = str(err.value)
    assert message.startswith(
        "kubectl port-forward to svc/x-frontend in namespace dynamo failed: "
        'error: services "x-frontend" not found; check `kubectl get svc -n'
    )
    [(pid, _)] = calls(kubectl)
    assert not alive(pid)


def test_port_forward_needs_a_graph(kubectl):
    result = _ops(["smoke", "--url", "http://127.0.0.1:1", "--port-forward"])
    assert result.returncode == 2
    assert "error: --port-forward needs --graph NAME" in result.stderr
    assert calls(kubectl) == []


def test_unknown_graph_names_the_graphs(kubectl, tmp_path):
    config = mocker_config(tmp_path)
    result = _ops(["smoke", "--graph", "nope", "--config", str(config), "--port-forward"])
    assert result.returncode == 2
    assert f"error: graph 'nope' is not in {config}; graphs there: smoke-agg" in result.stderr
    assert calls(kubectl) == []


def test_graph_without_port_forward_uses_the_cluster_service_dns(tmp_path):
    config = mocker_config(tmp_path)
    result = _ops(["smoke", "--graph", "smoke-agg", "--config", str(config), "--wait", "0"])
    assert result.returncode == 1
    assert "smoke test of http://smoke-agg-frontend.dynamo.svc.cluster.local:8000" in result.stdout


def test_smoke_through_port_forward_against_real_dynamo(kubectl, tmp_path, monkeypatch):
    require_dynamo_venv()
    config = mocker_config(tmp_path)
    graph = local_graph(select_graph(load_config(config), "smoke-agg", str(config)))
    with LocalDynamo(graph, tmp_path / "dynamo") as dynamo:
        monkeypatch.setenv("FAKE_KUBECTL_PORT", str(dynamo.port))
        result = _ops(
            [
                "smoke",
                "--graph",
                "smoke-agg",
                "--config",
                str(config),
                "--port-forward",
                "--requests",
                "2",
                "--wait",
                "90",
            ],
            prefix=dynamo.netns_command([]),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"port-forward: svc/smoke-agg-frontend in dynamo -> 127.0.0.1:{dynamo.port}" in (result.stdout)
    assert "smoke passed: 8 checks" in result.stdout
    [(pid, _)] = calls(kubectl)
    assert not alive(pid)


def test_ctrl_c_during_smoke_stops_kubectl(kubectl, tmp_path):
    config = mocker_config(tmp_path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops",
            "smoke",
            "--graph",
            "smoke-agg",
            "--config",
            str(config),
            "--port-forward",
            "--wait",
            "600",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("port-forward: svc/smoke-agg-frontend")
    [(pid, _)] = calls(kubectl)
    assert alive(pid)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "interrupted" in err
    _wait_until(lambda: not alive(pid))


def _ops(args: list[str], prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "ops", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
