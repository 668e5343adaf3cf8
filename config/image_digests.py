"""The pinned image digests of a pipeline: one reviewed file, one owner (this module).

`python -m image_build start --config <pipeline config> --wait` records the digest of each
image it built; a pull request commits the file; every stage's graphs then name the image
by that digest (`<registry>/<prefix>/<image>@sha256:...`), so the templates that reach prod
name exactly the bytes dev ran. The file:

    # comment written by record()
    registry: 111111111111.dkr.ecr.us-west-2.amazonaws.com/dynamo
    images:
      vllm-runtime:1.6.1: sha256:<64 hex>

`registry` is where the digests were recorded; a file for another registry is refused (its
digests say nothing about the images there).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from config.loader import ConfigError

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# "<image>:<tag>": an ECR repository name's last part and a Docker tag.
KEY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")

HEADER = (
    "# Digests of the Dynamo images this pipeline builds once, in its tooling account\n"
    "# (`python -m image_build start --config {config} --framework <fw> [--efa] --wait`\n"
    "# writes them; do not edit by hand). Graphs of every stage pull these exact digests.\n"
)


def load(path: Path, *, registry: str) -> dict[str, str]:
    """'<image>:<tag>' -> digest; {} without a file. ConfigError (one line per problem)
    names the file and the entry."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: not YAML ({err}); restore it from git"]) from None
    if not isinstance(data, dict) or set(data) - {"registry", "images"}:
        raise ConfigError([f"{path}: expected the keys 'registry' and 'images' only; restore it from git"])
    if data.get("registry") != registry:
        raise ConfigError(
            [
                f"{path}: registry: digests were recorded for '{data.get('registry')}', but this "
                f"pipeline's images are in '{registry}'; delete the file and build the images "
                "again (python -m image_build start ... --wait records them)"
            ]
        )
    images = data.get("images") or {}
    if not isinstance(images, dict):
        raise ConfigError([f"{path}: images: expected a mapping of '<image>:<tag>' to a digest"])
    lines = []
    for key, digest in images.items():
        if not isinstance(key, str) or not KEY.match(key):
            lines.append(f"{path}: images.{key}: not '<image>:<tag>' (e.g. vllm-runtime:1.6.1)")
        elif not isinstance(digest, str) or not DIGEST.match(digest):
            lines.append(
                f"{path}: images.{key}: '{digest}' is not a digest; it must be sha256: followed "
                "by 64 lowercase hex digits, as `aws ecr describe-images` prints it"
            )
    if lines:
        raise ConfigError(lines)
    return dict(images)


def record(path: Path, *, registry: str, key: str, digest: str, config: str) -> None:
    """Add or replace one entry, keeping the file sorted (a build's diff is one line)."""
    if not KEY.match(key):
        raise ValueError(f"'{key}' is not '<image>:<tag>'")
    if not DIGEST.match(digest):
        raise ValueError(f"'{digest}' is not a sha256 digest")
    images = load(path, registry=registry)
    images[key] = digest
    body = yaml.safe_dump({"registry": registry, "images": dict(sorted(images.items()))}, sort_keys=False)
    path.write_text(HEADER.format(config=config) + body)
