"""Before a pipeline stage deploys graphs: every pinned image they pull exists.

The images are read from the stage's own rendered graph manifests (what its Inference
stacks apply), so the check covers exactly what the stage will pull; each is looked up by
digest in the tooling account's repository (`aws ecr describe-images`), and a missing one
stops the stage before any of its stacks changes, with the command that builds it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack, pipelines
from aws_cdk import aws_iam as iam

from config.images import SharedRegistry, framework_of
from config.schema import DeploymentConfig

_PINNED = re.compile(r"^(?P<location>[^@]+)/(?P<image>[a-z0-9-]+)@(?P<digest>sha256:[0-9a-f]{64})$")


@dataclass(frozen=True, order=True)
class PinnedImage:
    image: str
    digest: str

    def repository(self, shared: SharedRegistry) -> str:
        return f"{shared.repository_prefix}/{self.image}"


def graph_images(cfg: DeploymentConfig) -> set[str]:
    """Every `image` of the environment's rendered graph manifests (pods, Jobs)."""
    import cdk8s

    from k8s_charts import graphs as graph_charts

    images: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "image" and isinstance(value, str):
                    images.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for chart in graph_charts.build(cdk8s.App(), cfg, graph_charts.review_inputs(cfg)):
        walk(chart.to_json())
    return images


def pinned_images(cfg: DeploymentConfig) -> list[PinnedImage]:
    """The environment's images that come from the pipeline's shared registry."""
    shared = cfg.images.shared
    if shared is None:
        return []
    found = set()
    for uri in graph_images(cfg):
        match = _PINNED.match(uri)
        if match and match["location"] == shared.location:
            found.add(PinnedImage(image=match["image"], digest=match["digest"]))
    return sorted(found)


def check_commands(shared: SharedRegistry, images: list[PinnedImage], environment: str) -> list[str]:
    commands = []
    for pinned in images:
        tag = next((k.split(":", 1)[1] for k, v in shared.digests.items() if v == pinned.digest), None)
        efa = " --efa" if tag is not None and tag.endswith("-efa") else ""
        build = (
            f"python -m image_build start --config {shared.config_path} "
            f"--framework {framework_of(pinned.image)}{efa} --wait"
        )
        missing = (
            f"error: {shared.location}/{pinned.image}@{pinned.digest}, which graphs of {environment} "
            f"pull, is not in the tooling account's repository; build it ({build}) and commit "
            f"{shared.digests_file}"
        )
        describe = shlex.join(
            [
                "aws",
                "ecr",
                "describe-images",
                "--region",
                shared.region,
                "--registry-id",
                shared.account,
                "--repository-name",
                pinned.repository(shared),
                "--image-ids",
                f"imageDigest={pinned.digest}",
            ]
        )
        commands.append(
            f"if {describe} >/dev/null; then echo 'found {pinned.image}@{pinned.digest}'; "
            f"else echo {shlex.quote(missing)} >&2; exit 1; fi"
        )
    return commands


def image_check_step(
    stack: Stack, cfg: DeploymentConfig, *, input_: pipelines.IFileSetProducer
) -> pipelines.CodeBuildStep | None:
    """A CodeBuild step (tooling account) that fails when a pinned image of `cfg` is
    missing; None when the environment's graphs pull none."""
    shared = cfg.images.shared
    images = pinned_images(cfg)
    if shared is None or not images:
        return None
    repositories = sorted({p.repository(shared) for p in images})
    return pipelines.CodeBuildStep(
        f"CheckImages-{cfg.environment}",
        input=input_,
        commands=check_commands(shared, images, cfg.environment),
        role_policy_statements=[
            iam.PolicyStatement(
                actions=["ecr:DescribeImages"],
                resources=[
                    stack.format_arn(
                        service="ecr",
                        region=shared.region,
                        account=shared.account,
                        resource="repository",
                        resource_name=repository,
                    )
                    for repository in repositories
                ],
            )
        ],
    )
