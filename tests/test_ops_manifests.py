"""`make manifests` and `make synth`: output per environment and config, never a stale file."""

from __future__ import annotations

from config.environments import environment_configs
from plan import load_config
from tests.ops_dynamo_support import REPO, run_ops

PIPELINE = REPO / "config" / "examples" / "pipeline.yaml"


def test_a_pipeline_config_renders_every_environment_into_its_own_folder(tmp_path):
    cfg = load_config(PIPELINE)
    environments = [env.environment for _, env in environment_configs(cfg, PIPELINE)]
    assert len(environments) >= 2
    stale = tmp_path / environments[0] / "removed-chart.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: Stale\n")
    result = run_ops(["manifests", "--config", str(PIPELINE), "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(environments)
    for environment in environments:
        assert (tmp_path / environment / "platform.yaml").is_file(), result.stdout
        assert f"{tmp_path / environment / 'platform.yaml'}: " in result.stdout
    assert not stale.exists()
    assert cfg.environment not in environments  # the base alone is never rendered


def test_a_single_environment_config_renders_into_its_environment_folder(tmp_path):
    config = REPO / "config" / "default.yaml"
    result = run_ops(["manifests", "--config", str(config), "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [load_config(config).environment]


def test_make_synth_leaves_only_this_configs_templates(tmp_path):
    """Another config's templates never sit next to the new ones in cdk.out."""
    import subprocess

    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "old-network.template.json").write_text("{}")
    result = subprocess.run(
        ["make", "synth", f"CDK_OUT={out}"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"templates of config/default.yaml written to {out}/" in result.stdout
    templates = sorted(p.name for p in out.glob("*.template.json"))
    environment = load_config(REPO / "config" / "default.yaml").environment
    assert templates and all(name.startswith(f"{environment}-") for name in templates), templates
