"""`ops smoke --url URL | --graph NAME [--port-forward]`: is a Dynamo endpoint really serving?

The seed's test.sh, done right: first wait until /v1/models lists the model (/health turns
green before any worker registers), then check /health, /live, /metrics (Prometheus text
with Dynamo frontend metrics), a chat completion, a streamed chat completion and a
completion, and report time to first token and end-to-end latency over N requests.
Exit code 0 when every check passes, 1 otherwise (the failing checks are named).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import selectors
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from ops.cli import UsageError

PROMPT = "Say hello to the smoke test."
REQUEST_TIMEOUT = 120.0
PORT_FORWARD_TIMEOUT = 30.0
# A refused connection is retried this long (a frontend just started binds its port).
REFUSED_GRACE = 3.0
_FORWARDING = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="frontend base URL, e.g. http://127.0.0.1:8000")
    target.add_argument("--graph", help="graph name from the config (its frontend service)")
    parser.add_argument(
        "--config", default="config/default.yaml", help="config that defines --graph (default: %(default)s)"
    )
    parser.add_argument(
        "--port-forward",
        action="store_true",
        help="with --graph: reach the frontend through `kubectl port-forward` "
        "(stopped when smoke ends); without it, the in-cluster service DNS",
    )
    parser.add_argument(
        "--model",
        help="served model name to expect (default: the graph's, "
        "or with --url the first one /v1/models lists)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=5,
        help="streamed requests for the latency report (default: %(default)s)",
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--wait",
        type=float,
        default=600.0,
        help="seconds to wait for a frontend that answers to list the model "
        "(default: %(default)s; GPU nodes, image pulls and weight loading "
        "take minutes). A refused connection or a host name that does not "
        "resolve fails within seconds",
    )


def run(args: argparse.Namespace) -> int:
    if args.requests < 1:
        raise UsageError("--requests must be at least 1")
    if args.port_forward and not args.graph:
        raise UsageError("--port-forward needs --graph NAME (it forwards to the graph's frontend)")
    model = args.model
    if args.graph:
        graph = _graph(args.config, args.graph)
        model = model or graph.model_name
        from config.names import FRONTEND_SERVICE_PORT, INFERENCE_NAMESPACE

        service = graph.frontend_service()
        if args.port_forward:
            with port_forward(INFERENCE_NAMESPACE, service, FRONTEND_SERVICE_PORT) as url:
                return _report(smoke(url, model, args))
        url = f"http://{service}.{INFERENCE_NAMESPACE}.svc.cluster.local:{FRONTEND_SERVICE_PORT}"
        return _report(smoke(url, model, args))
    return _report(smoke(args.url.rstrip("/"), model, args))


def _graph(config_path: str, name: str):
    from plan import load_config

    cfg = load_config(config_path)
    graphs = {graph.name: graph for graph in cfg.graphs}
    if name not in graphs:
        known = ", ".join(graphs) or "none"
        raise UsageError(f"graph '{name}' is not in {config_path}; graphs there: {known}")
    return graphs[name]


# -- checks -------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SmokeResult:
    url: str
    model: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name:<16} {detail}", flush=True)
        return ok


class CheckFailed(Exception):
    """One check's failure, with what was wrong (status, body excerpt, missing field)."""


def smoke(url: str, model: str | None, args: argparse.Namespace) -> SmokeResult:
    print(f"smoke test of {url}" + (f" (model '{model}')" if model else ""), flush=True)
    result = SmokeResult(url, model)
    try:
        result.model = model = wait_for_model(url, model, args.wait)
    except CheckFailed as err:
        result.add("models", False, str(err))
        return result
    result.add("models", True, f"/v1/models lists '{model}'")
    checks = (
        ("health", lambda: check_health(url)),
        ("live", lambda: check_live(url)),
        ("metrics", lambda: check_metrics(url)),
        ("chat", lambda: check_chat(url, model, args.max_tokens)),
        ("chat-stream", lambda: check_chat_stream(url, model, args.max_tokens)),
        ("completion", lambda: check_completion(url, model, args.max_tokens)),
        ("latency", lambda: check_latency(url, model, args.max_tokens, args.requests)),
    )
    for name, check in checks:
        try:
            detail = check()
        except CheckFailed as err:
            result.add(name, False, str(err))
        else:
            result.add(name, True, detail)
    return result


def _report(result: SmokeResult) -> int:
    failed = [check.name for check in result.checks if not check.ok]
    if failed:
        print(f"smoke FAILED: {', '.join(failed)}", flush=True)
        return 1
    print(f"smoke passed: {len(result.checks)} checks against {result.url}", flush=True)
    return 0


def wait_for_model(url: str, model: str | None, wait: float) -> str:
    """Poll /v1/models until it lists `model` (or any model when None); return the name.

    Only a frontend that answers (or a port-forward whose pod is still starting) is worth
    waiting for: a host name that does not resolve fails at once, and a refused connection
    after REFUSED_GRACE seconds (a local frontend binds its port within that), each with
    its cause and the next step instead of a timeout that blames the model.
    """
    started = time.monotonic()
    deadline = started + wait
    last = "no answer yet"
    while True:
        try:
            status, body = http_get(f"{url}/v1/models", timeout=10)
            if status == 200:
                listed = [entry.get("id") for entry in json.loads(body).get("data", [])]
                if model is None and listed:
                    return listed[0]
                if model is not None and model in listed:
                    return model
                last = f"listed: {', '.join(map(str, listed)) or 'none'}"
            else:
                last = f"HTTP {status}: {_excerpt(body)}"
        except (OSError, ValueError, AttributeError) as err:
            unreachable = _unreachable(url, err)
            if unreachable and (
                isinstance(_reason(err), socket.gaierror)
                or time.monotonic() - started >= min(wait, REFUSED_GRACE)
            ):
                raise CheckFailed(unreachable) from None
            last = f"{type(err).__name__}: {err}"
        if time.monotonic() >= deadline:
            wanted = f"model '{model}'" if model else "any model"
            raise CheckFailed(
                f"{wanted} not listed by /v1/models after {wait:.0f}s ({last}); check the "
                "served model name, then worker pods/logs (GPU node not ready? image pull?)"
            )
        time.sleep(min(REFUSED_GRACE / 4, max(0.0, deadline - time.monotonic())))


def _reason(err: BaseException) -> BaseException:
    reason = getattr(err, "reason", None)
    return reason if isinstance(reason, BaseException) else err


def _unreachable(url: str, err: BaseException) -> str | None:
    """The cause and next step when nothing at `url` can ever answer, else None."""
    reason = _reason(err)
    where = urllib.parse.urlsplit(url)
    if isinstance(reason, socket.gaierror):
        return (
            f"host '{where.hostname}' does not resolve ({reason.strerror or reason}); check the "
            "URL. A graph's *.svc.cluster.local name resolves only inside the cluster: from "
            "your machine use `make smoke GRAPH=<name>` (kubectl port-forward)"
        )
    if isinstance(reason, ConnectionRefusedError):
        return (
            f"connection refused at {where.netloc}: nothing listens there; check the URL's "
            "host and port. A deployed graph: `make smoke GRAPH=<name>` (port-forward); a "
            "local one: `make rehearse KEEP=1` prints the URL to use"
        )
    return None


def check_health(url: str) -> str:
    status, body = _get_ok(f"{url}/health")
    state = _json(body, "/health").get("status")
    if state not in ("healthy", "ready"):
        raise CheckFailed(f"/health status is {state!r}: {_excerpt(body)}")
    return f"status {state}"


def check_live(url: str) -> str:
    status, body = _get_ok(f"{url}/live")
    return f"HTTP {status}"


def check_metrics(url: str) -> str:
    from prometheus_client.parser import text_string_to_metric_families

    _, body = _get_ok(f"{url}/metrics")
    try:
        families = [family.name for family in text_string_to_metric_families(body.decode())]
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise CheckFailed(f"/metrics is not Prometheus text: {err}") from None
    dynamo = [name for name in families if name.startswith("dynamo_frontend_")]
    if not dynamo:
        raise CheckFailed(f"/metrics has {len(families)} metric families but none named dynamo_frontend_*")
    return f"{len(families)} families, {len(dynamo)} dynamo_frontend_*"


def check_chat(url: str, model: str, max_tokens: int) -> str:
    body = _post_ok(f"{url}/v1/chat/completions", _chat_request(model, max_tokens))
    data = _json(body, "chat completion")
    content = _field(data, "chat completion", "choices", 0, "message", "content")
    if not content:
        raise CheckFailed(f"chat completion has empty content: {_excerpt(body)}")
    tokens = _field(data, "chat completion", "usage", "completion_tokens")
    return f"{tokens} tokens: {content[:40]!r}"


def check_chat_stream(url: str, model: str, max_tokens: int) -> str:
    timing = stream_chat(url, model, max_tokens)
    return f"{timing.chunks} chunks, first token after {timing.ttft * 1000:.0f} ms"


def check_completion(url: str, model: str, max_tokens: int) -> str:
    request = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens}
    body = _post_ok(f"{url}/v1/completions", request)
    text = _field(_json(body, "completion"), "completion", "choices", 0, "text")
    if not text:
        raise CheckFailed(f"completion has empty text: {_excerpt(body)}")
    return f"{text[:40]!r}"


def check_latency(url: str, model: str, max_tokens: int, requests: int) -> str:
    timings = [stream_chat(url, model, max_tokens) for _ in range(requests)]
    ttft = sorted(t.ttft * 1000 for t in timings)
    e2e = sorted(t.total * 1000 for t in timings)
    return (
        f"{requests} requests: TTFT p50 {percentile(ttft, 50):.0f} ms, p90 "
        f"{percentile(ttft, 90):.0f} ms; end-to-end p50 {percentile(e2e, 50):.0f} ms, p90 "
        f"{percentile(e2e, 90):.0f} ms"
    )


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class StreamTiming:
    ttft: float
    total: float
    chunks: int


def stream_chat(url: str, model: str, max_tokens: int) -> StreamTiming:
    """One streamed chat completion; TTFT is the first chunk that carries content."""
    request = {**_chat_request(model, max_tokens), "stream": True}
    started = time.monotonic()
    ttft = None
    chunks = 0
    finish = None
    done = False
    with _open(f"{url}/v1/chat/completions", request) as response:
        for raw in response:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line.startswith("data:"):
                continue
            payload = line[len("data:") :].strip()
            if payload == "[DONE]":
                done = True
                break
            chunk = _json(payload.encode(), "stream chunk")
            if chunk.get("object") != "chat.completion.chunk":
                raise CheckFailed(f"unexpected stream chunk: {_excerpt(payload.encode())}")
            chunks += 1
            for choice in chunk.get("choices", []):
                if choice.get("delta", {}).get("content") and ttft is None:
                    ttft = time.monotonic() - started
                finish = choice.get("finish_reason") or finish
    total = time.monotonic() - started
    if ttft is None:
        raise CheckFailed(f"stream had {chunks} chunks but none carried content")
    if not done or finish is None:
        raise CheckFailed(
            f"stream ended without {'a finish_reason' if done else 'data: [DONE]'} after {chunks} chunks"
        )
    return StreamTiming(ttft, total, chunks)


def _chat_request(model: str, max_tokens: int) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
    }


# -- HTTP (stdlib only: smoke runs wherever Python does) ----------------------------------


def http_get(url: str, timeout: float = REQUEST_TIMEOUT) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _get_ok(url: str) -> tuple[int, bytes]:
    try:
        status, body = http_get(url)
    except OSError as err:
        raise CheckFailed(f"GET {url}: {err}") from None
    if status != 200:
        raise CheckFailed(f"GET {url}: HTTP {status}: {_excerpt(body)}")
    return status, body


@contextmanager
def _open(url: str, payload: dict) -> Iterator:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        response = urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT)
    except urllib.error.HTTPError as err:
        raise CheckFailed(f"POST {url}: HTTP {err.code}: {_excerpt(err.read())}") from None
    except OSError as err:
        raise CheckFailed(f"POST {url}: {err}") from None
    with response:
        yield response


def _post_ok(url: str, payload: dict) -> bytes:
    with _open(url, payload) as response:
        return response.read()


def _json(body: bytes, what: str) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        raise CheckFailed(f"{what} is not JSON: {_excerpt(body)}") from None
    if not isinstance(data, dict):
        raise CheckFailed(f"{what} is not a JSON object: {_excerpt(body)}")
    return data


def _field(data: dict, what: str, *path):
    value = data
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as error:
            dotted = ".".join(str(part) for part in path)
            raise CheckFailed(f"{what} has no {dotted}: {_excerpt(json.dumps(data).encode())}") from error
    return value


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


# -- kubectl port-forward -----------------------------------------------------------------


@contextmanager
def port_forward(namespace: str, service: str, port: int) -> Iterator[str]:
    """`kubectl port-forward svc/<service>` on a free local port; always stopped on exit."""
    command = [
        "kubectl",
        "port-forward",
        "--namespace",
        namespace,
        f"svc/{service}",
        f":{port}",
        "--address",
        "127.0.0.1",
    ]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise UsageError("kubectl not found on PATH; install it or use --url") from None
    try:
        local_port = _forwarded_port(process, service, namespace)
        print(f"port-forward: svc/{service} in {namespace} -> 127.0.0.1:{local_port}", flush=True)
        yield f"http://127.0.0.1:{local_port}"
    finally:
        _stop(process)


def _forwarded_port(process: subprocess.Popen[bytes], service: str, namespace: str) -> int:
    stdout, stderr = process.stdout, process.stderr
    if stdout is None or stderr is None:
        raise ValueError("kubectl port-forward must run with its stdout and stderr piped")
    deadline = time.monotonic() + PORT_FORWARD_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = stdout.readline()
            if not line:  # kubectl closed its output: it is exiting
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
                break
            match = _FORWARDING.search(line)
            if match:
                return int(match.group(1))
    process.poll()
    error = ""
    if process.returncode is not None:
        lines = stderr.read().decode(errors="replace").strip().splitlines()
        error = lines[-1] if lines else f"exit code {process.returncode}"
    raise UsageError(
        f"kubectl port-forward to svc/{service} in namespace {namespace} failed: "
        f"{error or f'no forwarding within {PORT_FORWARD_TIMEOUT:.0f}s'}; check "
        f"`kubectl get svc -n {namespace}` and that the graph is deployed"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()
