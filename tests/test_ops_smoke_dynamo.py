"""`ops smoke` against REAL Dynamo 1.6.1: a frontend plus mocker workers per topology.

Each topology's processes start once per module (seconds) and every smoke run goes through
the real CLI, inside the processes' private network namespace when running as root.
"""

from __future__ import annotations

import re
import time

import pytest

from ops.local_dynamo import LocalDynamo
from ops.rehearse import local_graph, select_graph
from plan import load_config
from tests.ops_dynamo_support import (
    SERVED_MODEL,
    mocker_config,
    require_dynamo_venv,
    run_ops,
)

pytestmark = pytest.mark.xdist_group("dynamo")

CHECKS = ("models", "health", "live", "metrics", "chat", "chat-stream", "completion", "latency")


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    return mocker_config(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module", params=["smoke-agg", "smoke-agg-router", "smoke-disagg"])
def running(request, config_path, tmp_path_factory):
    require_dynamo_venv()
    cfg = load_config(config_path)
    graph = local_graph(select_graph(cfg, request.param, str(config_path)))
    with LocalDynamo(graph, tmp_path_factory.mktemp(request.param)) as dynamo:
        yield dynamo


def smoke(dynamo: LocalDynamo, *args: str):
    return run_ops(
        ["smoke", "--url", dynamo.url, "--requests", "3", *args],
        prefix=dynamo.netns_command([]),
    )


def test_smoke_passes_every_check(running):
    result = smoke(running, "--model", SERVED_MODEL, "--wait", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    for check in CHECKS:
        assert re.search(rf"^\s+PASS\s+{re.escape(check)}\s", result.stdout, re.M), result.stdout
    assert "FAIL" not in result.stdout
    assert re.search(r"TTFT p50 \d+ ms, p90 \d+ ms; end-to-end p50 \d+ ms", result.stdout)
    assert "dynamo_frontend_*" in result.stdout


def test_smoke_fails_on_wrong_model_name(running):
    # Ready first, so the only problem left is the name.
    assert smoke(running, "--model", SERVED_MODEL, "--wait", "90").returncode == 0
    result = smoke(running, "--model", "wrong/model", "--wait", "2")
    assert result.returncode == 1
    assert f"model 'wrong/model' not listed by /v1/models after 2s (listed: {SERVED_MODEL})" in result.stdout
    assert result.stdout.rstrip().endswith("smoke FAILED: models")


def test_smoke_without_model_uses_the_listed_one(running):
    result = smoke(running, "--wait", "90")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"/v1/models lists '{SERVED_MODEL}'" in result.stdout


def test_topology_shape_matches_the_graph(running):
    expected = {
        "smoke-agg": (None, ("agg",)),
        "smoke-agg-router": ("kv", ("agg", "agg")),
        "smoke-disagg": (None, ("prefill", "decode", "decode")),
    }[running.graph.name]
    assert (running.graph.router_mode, running.graph.workers) == expected
    running.check_alive()
    # Only a frontend in KV router mode subscribes to the workers' KV events (it logs so once
    # it has discovered a worker's publisher, which may come after the model is listed).
    assert smoke(running, "--model", SERVED_MODEL, "--wait", "90").returncode == 0
    log = running.workdir / "logs" / "frontend.log"
    deadline = time.monotonic() + 30
    while "KV event ingress" not in log.read_text(errors="replace") and expected[0] == "kv":
        assert time.monotonic() < deadline, "KV router never subscribed to KV events"
        time.sleep(0.2)
    assert ("KV event ingress" in log.read_text(errors="replace")) == (expected[0] == "kv")


def test_smoke_reports_unreachable_frontend(running):
    result = run_ops(
        ["smoke", "--url", "http://127.0.0.1:9", "--model", SERVED_MODEL, "--wait", "1"],
        prefix=running.netns_command([]),
    )
    assert result.returncode == 1
    assert "connection refused at 127.0.0.1:9: nothing listens there" in result.stdout
