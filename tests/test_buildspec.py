"""image_build/buildspec.yml: parses as a CodeBuild buildspec and, run phase by phase the
way CodeBuild 0.2 runs it (one bash shell), issues the right commands for each framework.

`aws`, `docker`, `git` and `python3` are stand-ins on PATH that record their arguments, so
the test runs the real shell text of the buildspec without network or Docker.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from config import versions
from config.names import BUILDSPEC

REGISTRY = "111122223333.dkr.ecr.us-west-2.amazonaws.com"
PHASES = ("install", "pre_build", "build", "post_build")

_STUB = """#!/bin/bash
# One write per call: in `a | b` both stand-ins record at the same time.
line="$(basename "$0")"
for arg in "$@"; do line+=" $(printf '%q' "$arg")"; done
printf '%s\\n' "$line" >> "$CALLS"
case "$(basename "$0") $1" in
  "aws ecr") [ "$2" = describe-images ] && exit "${EXISTING_TAG_RC:-1}"; echo token ;;
  "docker pull") exit "${DOCKER_PULL_RC:-0}" ;;
esac
exit 0
"""


def _spec() -> dict:
    return yaml.safe_load(BUILDSPEC.read_text())


def test_buildspec_shape():
    spec = _spec()
    assert str(spec["version"]) == "0.2"
    assert spec["env"]["shell"] == "bash"
    assert spec["env"]["exported-variables"] == ["IMAGE_URI"]
    assert list(spec["phases"]) == list(PHASES)
    for phase in PHASES:
        assert all(isinstance(c, str) for c in spec["phases"][phase]["commands"])


def _run(tmp_path: Path, **overrides: str) -> tuple[int, list[str], str]:
    """Run the buildspec like CodeBuild: phases in order in one shell; stop at a failure."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "docker", "git", "python3"):
        (bin_dir / tool).write_text(_STUB)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(calls),
        "CODEBUILD_SRC_DIR": str(tmp_path),
        "AWS_REGION": "us-west-2",
        "FRAMEWORK": "vllm",
        "EFA": "false",
        "DYNAMO_VERSION": versions.DYNAMO,
        "DYNAMO_GIT_REPOSITORY": versions.DYNAMO_GIT_REPOSITORY,
        "ECR_REGISTRY": REGISTRY,
        "CACHE_REPOSITORY": f"{REGISTRY}/dynamo-dev/build-cache",
        "RENDER_PIP": " ".join(versions.DYNAMO_RENDER_PIP),
        "DOCKER_HUB_MIRROR": f"{REGISTRY}/dynamo-dev-docker-hub",
        "BUILDKIT_IMAGE": "moby/buildkit:v0.31.2",
    }
    for framework, image in (
        ("VLLM", "vllm-runtime"),
        ("SGLANG", "sglang-runtime"),
        ("TRTLLM", "tensorrtllm-runtime"),
    ):
        env[f"IMAGE_REPOSITORY_{framework}"] = f"{REGISTRY}/dynamo-dev/{image}"
        env[f"CUDA_VERSION_{framework}"] = versions.DYNAMO_BUILD_CUDA[framework.lower()]
    env.update(overrides)
    (tmp_path / "dynamo").mkdir()
    lines = []
    spec = _spec()
    for phase in PHASES:
        lines.append(f"echo PHASE={phase}")
        lines.append("export CODEBUILD_BUILD_SUCCEEDING=1")
        for command in spec["phases"][phase]["commands"]:
            # A non-zero status (or an `exit` in the command) fails the phase.
            lines.append(f"eval {shlex.quote(command)} || exit 1")
    lines.append('echo "IMAGE_URI=$IMAGE_URI"')
    result = subprocess.run(
        ["bash", "-c", "\n".join(lines)], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    recorded = calls.read_text().splitlines() if calls.exists() else []
    output = result.stdout + result.stderr
    if result.returncode != 0:
        output += (
            f"\nFAILED_PHASE={[l for l in result.stdout.splitlines() if l.startswith('PHASE=')][-1][6:]}"
        )
    return result.returncode, recorded, output


@pytest.mark.parametrize(
    ("framework", "image", "cuda"),
    [
        ("vllm", "vllm-runtime", "13.0"),
        ("sglang", "sglang-runtime", "13.0"),
        ("trtllm", "tensorrtllm-runtime", "13.1"),
    ],
)
@pytest.mark.parametrize("efa", [False, True])
def test_builds_and_pushes_the_framework_image(tmp_path, framework, image, cuda, efa):
    rc, calls, output = _run(tmp_path, FRAMEWORK=framework, EFA="true" if efa else "false")
    assert rc == 0, output
    tag = f"{versions.DYNAMO}-efa" if efa else versions.DYNAMO
    uri = f"{REGISTRY}/dynamo-dev/{image}:{tag}"
    assert f"IMAGE_URI={uri}" in output
    joined = "\n".join(calls)
    assert (
        f"git clone --quiet --depth 1 --branch v{versions.DYNAMO} {versions.DYNAMO_GIT_REPOSITORY}" in joined
    )
    (render,) = [c for c in calls if "container/render.py" in c]
    render_args = shlex.split(render)
    assert render_args[:2] == ["python3", "container/render.py"]
    assert render_args[render_args.index("--framework") + 1] == framework
    assert render_args[render_args.index("--target") + 1] == "runtime"
    assert render_args[render_args.index("--cuda-version") + 1] == cuda
    assert "--output-short-filename" in render_args
    assert ("--make-efa" in render_args) is efa
    (build,) = [shlex.split(c) for c in calls if c.startswith("docker buildx build")]
    assert build[build.index("--tag") + 1] == uri
    assert build[build.index("--file") + 1] == "container/rendered.Dockerfile"
    cache = f"{REGISTRY}/dynamo-dev/build-cache:{framework}{'-efa' if efa else ''}"
    assert build[build.index("--cache-from") + 1] == f"type=registry,ref={cache}"
    assert build[build.index("--cache-to") + 1].startswith(f"type=registry,ref={cache},mode=max")
    assert "--push" in build and build[-1] == "."
    # Render happens before the build, login before the push.
    order = [" ".join(c.split()[:2]) for c in calls]
    assert order.index("docker login") < order.index("docker buildx")
    assert calls.index(render) < calls.index(next(c for c in calls if c.startswith("docker buildx build")))


def test_installs_pinned_render_dependencies(tmp_path):
    rc, calls, output = _run(tmp_path)
    assert rc == 0, output
    assert calls[0] == "python3 -m pip install --quiet --disable-pip-version-check " + " ".join(
        versions.DYNAMO_RENDER_PIP
    )


def test_unknown_framework_fails_before_any_work(tmp_path):
    rc, calls, output = _run(tmp_path, FRAMEWORK="tensorflow")
    assert rc != 0
    assert "FAILED_PHASE=pre_build" in output and "unknown FRAMEWORK 'tensorflow'" in output
    assert not [c for c in calls if c.startswith(("git", "docker"))]


def test_existing_tag_stops_early(tmp_path):
    rc, calls, output = _run(tmp_path, EXISTING_TAG_RC="0")
    assert rc != 0
    assert "already exists and tags are immutable" in output
    assert not [c for c in calls if c.startswith("docker buildx build")]


def test_buildkit_and_docker_hub_come_through_the_pull_through_cache(tmp_path):
    rc, calls, output = _run(tmp_path)
    assert rc == 0, output
    mirror = f"{REGISTRY}/dynamo-dev-docker-hub"
    assert f"docker pull --quiet {mirror}/moby/buildkit:v0.31.2" in calls
    (create,) = [shlex.split(c) for c in calls if c.startswith("docker buildx create")]
    assert create[create.index("--driver-opt") + 1] == f"image={mirror}/moby/buildkit:v0.31.2"
    config = Path(create[create.index("--config") + 1])
    # BuildKit's own syntax: Docker Hub (docker.io) mirrored to <registry>/<prefix>.
    import tomllib

    assert tomllib.loads(config.read_text()) == {"registry": {"docker.io": {"mirrors": [mirror]}}}
    # Logged in to the registry (the mirror's host) before BuildKit pulls through it.
    order = [" ".join(c.split()[:2]) for c in calls]
    assert order.index("docker login") < order.index("docker pull") < order.index("docker buildx")


def test_without_the_cache_buildkit_comes_from_docker_hub_with_a_warning(tmp_path):
    rc, calls, output = _run(tmp_path, DOCKER_PULL_RC="1")
    assert rc == 0, output
    (create,) = [shlex.split(c) for c in calls if c.startswith("docker buildx create")]
    assert create[create.index("--driver-opt") + 1] == "image=moby/buildkit:v0.31.2"
    assert "is its Docker Hub secret set?" in output
