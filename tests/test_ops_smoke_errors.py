"""`ops smoke` names the cause and the next step when nothing can answer, within seconds.

No timed asserts: each run passes a --wait a few times longer than the fast failure, so a
regression (waiting it out) shows up as the generic timeout message, not as a slow test.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.ops_dynamo_support import run_ops

TIMEOUT_MESSAGE = "not listed by /v1/models after"


@contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound (nobody else gets it) but refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_refused_connection_fails_fast_with_the_port_hint():
    with closed_port() as port:
        result = run_ops(["smoke", "--url", f"http://127.0.0.1:{port}", "--wait", "10"])
    assert result.returncode == 1
    assert (
        f"FAIL  models           connection refused at 127.0.0.1:{port}: nothing listens "
        "there; check the URL's host and port"
    ) in result.stdout
    assert "make smoke GRAPH=<name>" in result.stdout
    assert "make rehearse KEEP=1" in result.stdout
    assert TIMEOUT_MESSAGE not in result.stdout
    assert result.stdout.rstrip().endswith("smoke FAILED: models")


def test_unresolvable_host_fails_fast_with_the_dns_hint():
    result = run_ops(["smoke", "--url", "http://nonexistent.invalid:8000", "--wait", "10"])
    assert result.returncode == 1
    assert "host 'nonexistent.invalid' does not resolve" in result.stdout
    assert "resolves only inside the cluster" in result.stdout
    assert TIMEOUT_MESSAGE not in result.stdout


class _NotReady(BaseHTTPRequestHandler):
    """A frontend that answers but has no model yet (what Dynamo does while workers load)."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = json.dumps({"object": "list", "data": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_frontend_that_answers_is_waited_for_until_wait_ends():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        result = run_ops(
            ["smoke", "--url", f"http://127.0.0.1:{port}", "--model", "m/x", "--wait", "2"], timeout=60
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert "model 'm/x' not listed by /v1/models after 2s (listed: none)" in result.stdout
    assert "connection refused" not in result.stdout
