"""No secret material in any synthesized template or rendered manifest.

Secrets reach the cluster only through Secrets Manager + External Secrets; a token pasted
into config, a Helm value or an env var would end up in CloudFormation (readable by anyone
with cloudformation:GetTemplate) and in the kubectl provider's logs.
"""

from __future__ import annotations

import contextlib
import json
import re

import pytest

from plan import load_config
from tests.tools.configs import all_configs, config_id
from tests.tools.synth import synth

CONFIGS = all_configs()

PATTERNS = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "NGC API key": re.compile(r"\bnvapi-[A-Za-z0-9_-]{20,}\b"),
}
# Keys whose value is the secret itself (not a reference to where it is kept).
SECRET_KEYS = re.compile(
    r"^(password|passwd|adminPassword|secret|secretString|SecretString|token|apiKey|api_key|"
    r"clientSecret|secretAccessKey|aws_secret_access_key)$"
)
SECRET_ENV = re.compile(r"(TOKEN|PASSWORD|SECRET|API_KEY|ACCESS_KEY)", re.IGNORECASE)


def findings(document) -> list[str]:
    """Problems in a JSON-like document (dicts, lists, and JSON strings nested inside)."""
    found: list[str] = []

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            if (
                isinstance(node.get("name"), str)
                and isinstance(node.get("value"), str)
                and SECRET_ENV.search(node["name"])
                and node["value"]
            ):
                found.append(f"{path}: env {node['name']} has a literal value")
            for key, value in node.items():
                if SECRET_KEYS.match(str(key)) and isinstance(value, str) and value:
                    found.append(f"{path}.{key}: literal secret value")
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")
        elif isinstance(node, str):
            for label, pattern in PATTERNS.items():
                if pattern.search(node):
                    found.append(f"{path}: looks like a {label}")
            if node[:1] in "[{":
                with contextlib.suppress(ValueError):
                    walk(json.loads(node), f"{path}(json)")

    walk(document, "")
    return found


def test_scanner_finds_planted_material():
    planted = {
        "a": "token hf_" + "a1B2" * 9,
        "b": ["AKIA" + "ABCDEFGHIJKLMNOP"],
        "c": json.dumps({"grafana": {"adminPassword": "hunter2hunter2"}}),
        "d": {"env": [{"name": "HF_TOKEN", "value": "x" * 12}]},
        "e": "-----BEGIN RSA PRIVATE KEY-----",
    }
    assert len(findings(planted)) == 5


def test_scanner_accepts_references_to_secrets():
    references = {
        "envFrom": [{"secretRef": {"name": "hf-token-secret"}}],
        "admin": {"existingSecret": "grafana-admin", "passwordKey": "admin-password"},
        "GenerateSecretString": {"GenerateStringKey": "admin-password"},
        "env": [{"name": "HF_TOKEN_PATH", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "data": [{"secretKey": "HF_TOKEN", "remoteRef": {"key": "dynamo-dev/hf-token"}}],
    }
    assert findings(references) == []


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_templates_hold_no_secret_material(config):
    for name, template in synth(config).templates.items():
        assert findings(template) == [], name


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_rendered_manifests_hold_no_secret_material(config):
    from k8s_charts.registry import render

    for chart, objects in render(load_config(config)).items():
        assert findings(objects) == [], chart
