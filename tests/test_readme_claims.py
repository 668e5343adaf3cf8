"""What the README says about images is what the manifests do."""

from __future__ import annotations

from k8s_charts.registry import render
from plan import load_config
from tests.tools.synth import REPO


def test_frontends_run_the_frontend_image_and_workers_the_runtime_image():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "every graph's frontend runs `dynamo-frontend`" in readme
    (dgd,) = [
        o
        for o in render(load_config(REPO / "config" / "default.yaml"))["graphs"]
        if o["kind"] == "DynamoGraphDeployment"
    ]
    images = {
        c["name"]: c["podTemplate"]["spec"]["containers"][0]["image"] for c in dgd["spec"]["components"]
    }
    assert "/dynamo-frontend:" in images["frontend"]
    assert all("/vllm-runtime:" in images[role] for role in ("prefill", "decode"))
