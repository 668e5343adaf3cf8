"""The gates that make `cdk deploy` trustworthy without an AWS account, on every config in
config/ and config/examples/.

cfn-lint clean, cdk-nag clean with every acknowledgement justified, every Kubernetes object
valid against its schema, deterministic and offline synth through the real CDK CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from k8s_charts.registry import render
from plan import load_config
from tests.tools.cfn_lint import ignored_rules, lint
from tests.tools.configs import all_configs, config_id
from tests.tools.k8s_schema import schema_errors
from tests.tools.synth import REPO, synth

CONFIGS = all_configs()


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_cfn_lint_clean(config):
    result = synth(config)
    region = load_config(config).region
    findings = [f for file in result.template_files.values() for f in lint(file, [region])]
    assert findings == []


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_every_kubernetes_object_matches_its_schema(config):
    objects = [obj for rendered in render(load_config(config)).values() for obj in rendered]
    assert objects
    assert schema_errors(objects) == []


def test_every_ignored_cfn_lint_rule_has_a_reason():
    for rule, reason in ignored_rules().items():
        assert len(str(reason)) >= 40, f"cfn-lint rule {rule} is ignored without a real reason"


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_cdk_nag_clean_and_acknowledgements_justified(config):
    report = json.loads((synth(config).outdir / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for suppressed in nag["suppressedViolations"]:
        reason = suppressed.get("reason", "")
        assert len(reason) >= 60 and reason.rstrip().endswith((".", ")")), (
            f"{suppressed['ruleName']} at {suppressed['acknowledgedAt']}: reason too thin: {reason!r}"
        )


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        CDK_DISABLE_CLI_TELEMETRY="true",
        AWS_EC2_METADATA_DISABLED="true",
        # Any attempt to reach AWS goes nowhere.
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    return env


def _cli_synth(outdir: Path, *extra: str) -> None:
    cdk = REPO / "node_modules" / ".bin" / "cdk"
    command = [
        str(cdk),
        "synth",
        "--no-notices",
        "--quiet",
        "--no-version-reporting",
        "-o",
        str(outdir),
        *extra,
    ]
    # A private network namespace proves synth needs no network at all (we run as root in
    # CI); where that is not allowed, the proxy settings above still block AWS.
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0:
        command = ["unshare", "-n", *command]
    result = subprocess.run(command, cwd=REPO, env=_offline_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.xdist_group("cli")
def test_cli_synth_is_offline_and_deterministic(tmp_path):
    """Also proves that cdk-nag only checks: `make synth` (nag on) and a bare `cdk synth`
    (nag off) write the same templates, so skipping it in the bare synth changes nothing."""
    first, second = tmp_path / "one", tmp_path / "two"
    _cli_synth(first, "-c", "nag=true")
    _cli_synth(second)
    templates = sorted(p.name for p in first.glob("*.template.json"))
    assert {"dev-network.template.json", "dev-cluster.template.json", "dev-registry.template.json"} <= set(
        templates
    )
    assert templates == sorted(p.name for p in second.glob("*.template.json"))
    for name in templates:
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"{name} differs between synths"
    report = json.loads((first / "validation-report.json").read_text())
    assert [r["pluginName"] for r in report["pluginReports"]] == ["AwsSolutions"]
    assert not (second / "validation-report.json").exists()
