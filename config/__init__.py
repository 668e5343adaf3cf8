"""Typed configuration: what one YAML file may say, validated section by section.

Load configs with `plan.load_config`, which also resolves what needs several sections
(node pools for the graphs, capacity); `config.loader.load_config` alone checks sections.
"""

from config.loader import ConfigError
from config.schema import DeploymentConfig

__all__ = ["ConfigError", "DeploymentConfig"]
