"""Every invalid config fails with one line per problem naming the field and the fix."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config import ConfigError
from plan import load_config
from tests.conftest import DEFAULT_CONFIG, REPO

BASE = yaml.safe_load(DEFAULT_CONFIG.read_text())


def mutated(**changes) -> dict:
    """Copy of the default config with dotted-path changes (value None deletes)."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


CASES = {
    "unknown key": (
        mutated(network__vpc_cidrr="10.1.0.0/16"),
        "network.vpc_cidrr",
        "did you mean 'vpc_cidr'",
    ),
    "unknown top-level key": (mutated(clusterr={}), "clusterr", "did you mean 'cluster'"),
    "k8s 1.34": (
        mutated(cluster__kubernetes_version="1.34"),
        "cluster.kubernetes_version",
        "use one of 1.35, 1.36",
    ),
    "k8s 1.37": (
        mutated(cluster__kubernetes_version="1.37"),
        "cluster.kubernetes_version",
        "use one of 1.35, 1.36",
    ),
    "one AZ": (
        mutated(network__availability_zones=["us-west-2a"]),
        "network.availability_zones",
        "at least 2",
    ),
    "AZ not in region": (
        mutated(network__availability_zones=["us-west-2a", "us-east-1b"]),
        "availability_zones",
        "not a zone of us-west-2",
    ),
    "AZ letter": (
        mutated(network__availability_zones=["us-west-2a", "us-west-2z"]),
        "us-west-2z",
        "use zones from",
    ),
    "bad CIDR": (mutated(network__vpc_cidr="10.0.0.300/16"), "network.vpc_cidr", "not a valid IPv4 CIDR"),
    "host bits": (mutated(network__vpc_cidr="10.0.0.1/16"), "network.vpc_cidr", "no host bits"),
    "overlapping CIDRs": (
        mutated(cluster__service_ipv4_cidr="10.0.128.0/20"),
        "service_ipv4_cidr",
        "overlaps network.vpc_cidr",
    ),
    "subnets do not fit": (mutated(network__vpc_cidr="10.0.0.0/18"), "network", "use a larger vpc_cidr"),
    "cluster name": (mutated(cluster__name="Dynamo_Dev"), "cluster.name", "not a DNS-1123 label"),
    "environment name": (mutated(environment="Prod!"), "environment", "not a DNS-1123 label"),
    "account digits": (mutated(account="12345"), "account", "12 digits"),
    "unknown region": (mutated(region="us-moon-1"), "region", "not a known AWS region"),
    "missing required": (mutated(cluster__name=None), "cluster.name", "required setting is missing"),
    "admin principal": (
        mutated(cluster__admin_principals=["bob"]),
        "cluster.admin_principals",
        "not an IAM role or user ARN",
    ),
    "node sizes": (
        mutated(cluster__system_nodes={"min_size": 3, "desired_size": 2}),
        "system_nodes",
        "min_size <= desired_size",
    ),
    "nat > zones": (mutated(network__nat_gateways=4), "nat_gateways", "at most 3"),
    "cluster log retention": (
        mutated(cluster__log_retention_days=0),
        "cluster.log_retention_days",
        "greater than or equal to 1",
    ),
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_gives_one_line(tmp_path, case):
    data, field, fix = CASES[case]
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, data))
    lines = raised.value.lines
    assert len(lines) == 1, lines
    assert field in lines[0] and fix in lines[0], lines[0]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "nope.yaml")
    assert raised.value.lines == [
        f"{tmp_path / 'nope.yaml'}: config file not found; pass an existing file with "
        "CONFIG=path (make) or -c config=path (cdk)"
    ]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("environment: dev\nregion: us-west-2\nnetwork:\n  vpc_cidr: [10.0.0.0/16\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    (line,) = raised.value.lines
    assert line.startswith(f"{path}:5:") and "YAML syntax error" in line


def test_two_problems_give_two_lines(tmp_path):
    data = mutated(account="12", cluster__kubernetes_version="1.30")
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, data))
    assert len(raised.value.lines) == 2


@pytest.mark.parametrize("command", ["ops", "app"])
def test_cli_prints_one_line_without_traceback(tmp_path, command):
    path = write(tmp_path, mutated(cluster__kubernetes_version="1.34"))
    if command == "ops":
        argv = [sys.executable, "-m", "ops", "validate", "--config", str(path)]
    else:
        argv = [sys.executable, "app.py"]
    env_context = {"CDK_CONTEXT_JSON": f'{{"config": "{path}"}}'}
    result = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, env={**_base_env(), **env_context}
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: {path}: cluster.kubernetes_version: Kubernetes 1.34 is not supported; use one "
        "of 1.35, 1.36 (older versions are in EKS extended support at 6x the hourly price)"
    ], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_accepts_default_and_warns():
    result = subprocess.run(
        [sys.executable, "-m", "ops", "validate", "--config", str(DEFAULT_CONFIG)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_base_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "ok: " in result.stdout
    assert f"warning: {DEFAULT_CONFIG}: cluster.admin_principals is empty" in result.stdout


def test_validate_reports_each_pipeline_environment():
    path = REPO / "config" / "examples" / "pipeline.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "ops", "validate", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_base_env(),
    )
    assert result.returncode == 0, result.stderr
    oks = [line for line in result.stdout.splitlines() if line.startswith("ok: ")]
    assert oks == [
        f"ok: {path} [dev] -> environment 'dev', cluster 'dynamo-dev' (Kubernetes 1.36) in 222222222222/us-west-2",
        f"ok: {path} [prod] -> environment 'prod', cluster 'dynamo-prod' (Kubernetes 1.36) in 333333333333/us-west-2",
        "ok: pipeline in 111111111111/us-west-2 promotes dev -> prod",
    ]


def _base_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def test_bad_nag_context_gives_one_line():
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**_base_env(), "CDK_CONTEXT_JSON": '{"nag": "yes"}'},
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "error: context nag: expected true or false, got 'yes'; use -c nag=true"


@pytest.mark.parametrize(
    ("context", "expected"),
    [({}, False), ({"nag": "true"}, True), ({"nag": "False"}, False), ({"nag": True}, True)],
)
def test_nag_context(context, expected):
    from app import nag_requested, new_app

    assert nag_requested(new_app(context=context)) is expected
