"""The tracing environment a graph's pods get (k8s_charts/tracing.py), run on the real Dynamo
1.6.1 frontend: its request spans arrive at the rendered OTLP endpoint under the rendered
service name, and it sends no log batch (so it prints no export error) while it serves.

The receiver is tests/tools/otlp_sink.mjs (Node's HTTP/2 server), which, like Tempo, takes
TraceService/Export and answers UNIMPLEMENTED to anything else. Each run starts one frontend
with no model: every request is a 404, which is still an `http-request` span.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from config.names import tempo_otlp_grpc_url
from k8s_charts.registry import render
from k8s_charts.tracing import ENDPOINT_ENV_NAMES, TRACING_ENV_NAMES
from plan import load_config
from tests.ops_dynamo_support import DEFAULT_CONFIG, REPO, require_dynamo_venv

pytestmark = pytest.mark.xdist_group("dynamo-tracing")

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
LOG_EXPORT_ERROR = "batch_log_processor"
REQUESTS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendered_frontend_env(tmp_path: Path) -> dict[str, str]:
    """The tracing variables of the default graph's frontend, with platform.tracing on."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["platform"]["tracing"]["enabled"] = True
    path = tmp_path / "tracing.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    (graph,) = [o for o in render(load_config(path))["graphs"] if o["kind"] == "DynamoGraphDeployment"]
    (frontend,) = [c for c in graph["spec"]["components"] if c["type"] == "frontend"]
    env = {e["name"]: e["value"] for e in frontend["podTemplate"]["spec"]["containers"][0]["env"]}
    return {name: env[name] for name in TRACING_ENV_NAMES}


def _wait_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"frontend exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"frontend did not listen within {timeout:.0f}s")


def _post(port: int) -> None:
    body = json.dumps({"model": "absent", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        while sock.recv(4096):
            pass


def export_run(tracing_env: dict[str, str], tmp_path: Path) -> tuple[list[dict], str]:
    """(requests the receiver got, the frontend's log) while the frontend serves REQUESTS
    requests and the span batch (every 5 s by default) has had time to leave; read before the
    frontend stops, because a stopping process flushes its log batch too."""
    require_dynamo_venv()
    sink_port, port = _free_port(), _free_port()
    received = tmp_path / "received.jsonl"
    log = tmp_path / "frontend.log"
    (tmp_path / "tmp").mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{sink_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYN_", "OTEL_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        TMPDIR=str(tmp_path / "tmp"),
        DYN_FILE_KV=str(tmp_path / "discovery"),
        DYN_NAMESPACE="dynamo",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: (url if k in ENDPOINT_ENV_NAMES else v) for k, v in tracing_env.items()})
    node = Path(sys.executable).parent / "node"
    with received.open("wb") as out:
        sink = subprocess.Popen(
            [str(node), str(REPO / "tests/tools/otlp_sink.mjs"), str(sink_port)], stdout=out
        )
    try:
        _wait_port(sink_port, sink, received, timeout=20)
        with log.open("wb") as out:
            frontend = subprocess.Popen(
                [
                    str(REPO / ".venv-dynamo/bin/python"),
                    *("-m", "dynamo.frontend", "--http-host", "127.0.0.1", "--http-port", str(port)),
                    *("--namespace", "dynamo", "--discovery-backend", "file", "--request-plane", "tcp"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
            )
        try:
            _wait_port(port, frontend, log)
            for _ in range(REQUESTS):
                _post(port)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and TRACES not in received.read_text():
                time.sleep(0.5)
            # One more span-batch period, so a log batch on the SDK's 1 s default timer would
            # have left as well.
            time.sleep(2)
            records = [json.loads(line) for line in received.read_text().splitlines()]
            return [r for r in records if "path" in r], log.read_text(errors="replace")
        finally:
            frontend.terminate()
            frontend.wait(timeout=30)
    finally:
        sink.terminate()
        sink.wait(timeout=10)


def export_problems(tracing_env: dict[str, str], tmp_path: Path) -> list[str]:
    requests, log = export_run(tracing_env, tmp_path)
    service = tracing_env.get("OTEL_SERVICE_NAME", "").encode()
    problems = []
    spans = [base64.b64decode(r["body"]) for r in requests if r["path"] == TRACES]
    if not spans:
        problems.append("no span export reached the OTLP endpoint")
    elif not any(service and service in body for body in spans):
        problems.append(f"no exported span carries service.name {service.decode()!r}")
    if any(r["path"] == LOGS for r in requests) or LOG_EXPORT_ERROR in log:
        problems.append("a log batch was exported while serving (Tempo rejects it: an ERROR line)")
    return problems


@pytest.fixture(scope="module")
def tracing_env(tmp_path_factory) -> dict[str, str]:
    env = rendered_frontend_env(tmp_path_factory.mktemp("config"))
    assert {env[name] for name in ENDPOINT_ENV_NAMES} == {tempo_otlp_grpc_url()}
    return env


def test_rendered_tracing_env_exports_spans_and_no_log_batch(tracing_env, tmp_path):
    assert export_problems(tracing_env, tmp_path) == []


def test_without_the_export_switch_no_span_leaves(tracing_env, tmp_path):
    planted = {k: v for k, v in tracing_env.items() if k != "OTEL_EXPORT_ENABLED"}
    assert "no span export reached the OTLP endpoint" in export_problems(planted, tmp_path)


def test_without_the_log_batch_delay_log_batches_leave(tracing_env, tmp_path):
    planted = {k: v for k, v in tracing_env.items() if k != "OTEL_BLRP_SCHEDULE_DELAY"}
    problems = export_problems(planted, tmp_path)
    assert any(p.startswith("a log batch was exported") for p in problems), problems
