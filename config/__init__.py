"""Typed configuration: one YAML file -> validated model -> stacks and charts."""

from config.loader import ConfigError, load_config
from config.schema import DeploymentConfig

__all__ = ["ConfigError", "DeploymentConfig", "load_config"]
