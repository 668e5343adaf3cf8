"""What the CodeBuild project (stacks/image_build.py) and the client agree on.

Kept free of aws_cdk so the client starts fast and needs no CDK to run.
"""

from __future__ import annotations

from pathlib import Path

BUILDSPEC = Path(__file__).resolve().parent / "buildspec.yml"

# Registry stack outputs the client reads to find the project.
OUTPUT_PROJECT = "ImageBuildProjectName"
OUTPUT_LOG_GROUP = "ImageBuildLogGroupName"


def framework_env_key(framework: str) -> str:
    """Suffix of the per-framework project variables (IMAGE_REPOSITORY_<KEY>, CUDA_VERSION_<KEY>)."""
    return framework.upper()
