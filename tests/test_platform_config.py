"""The `platform:` config section: defaults, bounds and one-line errors."""

from __future__ import annotations

import copy

import pytest
import yaml

from config import ConfigError
from config.platform import PlatformConfig
from plan import load_config
from tests.conftest import DEFAULT_CONFIG

BASE = yaml.safe_load(DEFAULT_CONFIG.read_text())


def load_with(tmp_path, platform: dict):
    data = copy.deepcopy(BASE)
    data["platform"] = platform
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_section_is_optional_and_defaults_match_default_yaml(tmp_path):
    data = copy.deepcopy(BASE)
    data.pop("platform")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_config(path).platform == load_config(DEFAULT_CONFIG).platform == PlatformConfig()


@pytest.mark.parametrize(
    "platform,field,hint",
    [
        ({"monitoring": {"enabled": False}}, "platform.monitoring", "set dcgm_exporter: false"),
        (
            {"monitoring": {"prometheus_retention_size_gib": 2000}},
            "platform.monitoring.prometheus_retention_size_gib",
            "1600",
        ),
        ({"monitoring": {"prometheus_retention_size_gib": 45}}, "platform.monitoring", "at most 40"),
        (
            {"model_cache": {"prefetch_backoff_limit": 50}},
            "platform.model_cache.prefetch_backoff_limit",
            "10",
        ),
        ({"model_cache": {"sizegib": 10}}, "platform.model_cache.sizegib", "size_gib"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_field(tmp_path, platform, field, hint):
    with pytest.raises(ConfigError) as err:
        load_with(tmp_path, platform)
    (line,) = err.value.lines
    assert field in line and hint in line


def test_monitoring_can_be_turned_off(tmp_path):
    cfg = load_with(tmp_path, {"monitoring": {"enabled": False, "dcgm_exporter": False}})
    assert not cfg.platform.monitoring.enabled
