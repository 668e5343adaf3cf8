"""`make destroy` on a pipeline config: a refusal with the per-environment procedure, or one
environment's standalone config (the same stacks the pipeline deployed)."""

from __future__ import annotations

import subprocess

import pytest

from config.environments import environment_configs
from ops import destroy_target
from ops.cli import UsageError
from plan import load_config
from tests.tools.synth import REPO

PIPELINE = "config/examples/pipeline.yaml"


def main(argv: list[str]) -> int:
    """`python -m ops destroy-target ...` (as ops.cli runs it, without importing every command)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    destroy_target.add_arguments(parser)
    try:
        return destroy_target.run(parser.parse_args(argv[1:]))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)


def test_pipeline_config_without_environment_is_refused_with_the_procedure(capsys):
    assert main(["destroy-target", "--config", PIPELINE]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert err[0].startswith(
        f"error: {PIPELINE} is a pipeline config: `cdk destroy --all` would select only "
        "the pipeline stack (dynamo-pipeline)"
    )
    text = "\n".join(err)
    # Last promoted first, each with the transition to disable and its own make destroy.
    assert text.index("1. prod (account 333333333333") < text.index("2. dev (account 222222222222")
    for env in ("prod", "dev"):
        assert (
            f"aws codepipeline disable-stage-transition --region us-west-2 --pipeline-name dynamo-pipeline "
            f"--stage-name {env} --transition-type Inbound --reason teardown"
        ) in text
        assert f"make destroy CONFIG={PIPELINE} ENVIRONMENT={env}" in text
    assert f"npx cdk destroy -c config={PIPELINE} dynamo-pipeline" in text


def test_environment_gets_a_standalone_config_equal_to_its_merged_config(tmp_path, capsys):
    assert (
        main(["destroy-target", "--config", PIPELINE, "--environment", "prod", "--out-dir", str(tmp_path)])
        == 0
    )
    captured = capsys.readouterr()
    written = tmp_path / "prod.yaml"
    assert captured.out == f"{written}\n"
    assert "disable-stage-transition" in captured.err and "--stage-name prod" in captured.err
    cfg = load_config(PIPELINE)
    (prod,) = [env for _, env in environment_configs(cfg, PIPELINE) if env.environment == "prod"]
    standalone = load_config(written)
    # Same model -> add_deployment builds the same stacks (names, account, region) the
    # pipeline's prod stage deployed, so `cdk destroy --all` with it selects exactly those.
    # (Fields only: the pipeline's shared image registry, a private attribute set by
    # environment_configs, changes what prod's registry stack contains, not its name.)
    assert standalone.model_dump() == prod.model_dump()
    assert standalone.pipeline is None and standalone.account == "333333333333"


def test_standalone_config_passes_through_and_a_wrong_environment_is_one_line(capsys):
    assert main(["destroy-target", "--config", "config/default.yaml"]) == 0
    assert capsys.readouterr().out == "config/default.yaml\n"
    assert main(["destroy-target", "--config", "config/default.yaml", "--environment", "prod"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: config/default.yaml describes environment 'dev', not 'prod'"
    )
    assert main(["destroy-target", "--config", PIPELINE, "--environment", "staging"]) == 2
    assert "has no environment 'staging'; use one of dev, prod" in capsys.readouterr().err


def test_make_destroy_goes_through_destroy_target():
    """The refusal stops make before the CDK CLI runs (dry run of the recipe)."""
    recipe = subprocess.run(
        ["make", "-n", "destroy", f"CONFIG={PIPELINE}", "ENVIRONMENT=dev"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"-m ops destroy-target --config {PIPELINE} --environment dev) &&" in recipe
    assert "destroy --no-notices --no-version-reporting --all -c config=$target" in recipe
