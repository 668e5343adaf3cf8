"""Failures outside a command's own checks name their cause and the next step."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.ops_dynamo_support import REPO


def test_app_outside_the_venv_prints_a_one_line_hint():
    # -S: no site-packages, as with a python3 that is not the project venv's.
    result = subprocess.run(
        [sys.executable, "-S", "app.py"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: aws_cdk is not installed for ")
    assert "`make synth`" in result.stderr and "source .venv/bin/activate" in result.stderr


def _no_credentials(tmp_path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_credentials_check_names_aws_profile_and_preflight(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ops", "credentials", "--config", "c.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=_no_credentials(tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: no AWS credentials found; set AWS_PROFILE=<profile>")
    assert "`make preflight CONFIG=c.yaml`" in result.stderr


def test_credentials_check_passes_with_credentials(tmp_path):
    env = {**_no_credentials(tmp_path), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    result = subprocess.run(
        [sys.executable, "-m", "ops", "credentials"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr


def test_make_diff_deploy_destroy_check_credentials_first_and_diff_has_no_all():
    """`cdk diff` has no --all ("Unknown option(s): --all"); the CLI runs only with credentials."""
    dry = subprocess.run(
        ["make", "-n", "diff", "deploy", "destroy"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    cdk = [i for i, line in enumerate(lines) if "node_modules/.bin/cdk " in line]
    credentials = [i for i, line in enumerate(lines) if "-m ops credentials" in line]
    assert len(cdk) == 3 and credentials and credentials[0] < cdk[0]
    diff = next(line for line in lines if "/cdk diff " in line)
    assert "--all" not in diff
