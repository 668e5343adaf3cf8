"""ImageBuild: the CodeBuild project in the Registry stack and what its role may do."""

from __future__ import annotations

import json

import pytest
import yaml
from aws_cdk.assertions import Match

from config import versions
from config.names import BUILD_FRAMEWORKS, BUILDSPEC, OUTPUT_LOG_GROUP, OUTPUT_PROJECT

pytestmark = pytest.mark.xdist_group("default")


def _project(default_synth) -> dict:
    (project,) = default_synth.assertions("registry").find_resources("AWS::CodeBuild::Project").values()
    return project["Properties"]


def _logical_id(template: dict, resource_type: str, name_property: str, name: str) -> str:
    (found,) = [
        lid
        for lid, r in template["Resources"].items()
        if r["Type"] == resource_type and r["Properties"].get(name_property) == name
    ]
    return found


def test_project_is_privileged_large_linux_with_pinned_inputs(default_synth):
    default_synth.assertions("registry").has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Name": "dynamo-dev-dynamo-image-build",
            "Environment": Match.object_like(
                {
                    "Type": "LINUX_CONTAINER",
                    "ComputeType": "BUILD_GENERAL1_LARGE",
                    "PrivilegedMode": True,
                    "Image": Match.string_like_regexp(r"aws/codebuild/standard:7\.0"),
                }
            ),
            "TimeoutInMinutes": 240,
            "EncryptionKey": Match.any_value(),
            "LogsConfig": {"CloudWatchLogs": Match.object_like({"Status": "ENABLED"})},
        },
    )
    variables = {
        v["Name"]: v["Value"] for v in _project(default_synth)["Environment"]["EnvironmentVariables"]
    }
    assert variables["DYNAMO_VERSION"] == versions.DYNAMO
    assert variables["DYNAMO_GIT_REPOSITORY"] == "https://github.com/ai-dynamo/dynamo.git"
    assert variables["FRAMEWORK"] == "vllm" and variables["EFA"] == "false"
    assert variables["CUDA_VERSION_TRTLLM"] == "13.1"
    assert variables["CUDA_VERSION_VLLM"] == variables["CUDA_VERSION_SGLANG"] == "13.0"
    template = default_synth.template("registry")
    for framework, image in BUILD_FRAMEWORKS.items():
        repo = _logical_id(template, "AWS::ECR::Repository", "RepositoryName", f"dynamo-dev/{image}")
        assert repo in json.dumps(variables[f"IMAGE_REPOSITORY_{framework.upper()}"])
    cache = _logical_id(template, "AWS::ECR::Repository", "RepositoryName", "dynamo-dev/build-cache")
    assert cache in json.dumps(variables["CACHE_REPOSITORY"])


def test_buildspec_is_the_committed_file(default_synth):
    source = _project(default_synth)["Source"]
    assert source["Type"] == "NO_SOURCE"
    assert yaml.safe_load(source["BuildSpec"]) == yaml.safe_load(BUILDSPEC.read_text())


def test_logs_kept_for_configured_days(default_synth):
    default_synth.assertions("registry").has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/aws/codebuild/dynamo-dev-dynamo-image-build", "RetentionInDays": 30},
    )


def test_role_pushes_only_to_our_build_repositories(default_synth):
    template = default_synth.template("registry")
    allowed = {
        _logical_id(template, "AWS::ECR::Repository", "RepositoryName", f"dynamo-dev/{image}")
        for image in (*BUILD_FRAMEWORKS.values(), "build-cache")
    }
    policies = [
        r
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and lid.startswith("ImageBuildProjectRole")
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    pushed_to = set()
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Resource"] == "*":
            assert actions == ["ecr:GetAuthorizationToken"], statement
            continue
        if statement.get("Sid") == "PullDockerHubThroughCache":
            # Only the repositories ECR creates under this build's pull-through cache prefix.
            assert "ecr:PutImage" not in actions
            assert ":repository/dynamo-dev-docker-hub/*" in json.dumps(statement["Resource"])
            continue
        if any(a.startswith("ecr:") for a in actions):
            assert "ecr:*" not in actions
            (repo, attribute) = statement["Resource"]["Fn::GetAtt"]
            assert attribute == "Arn" and repo in allowed, statement
            if "ecr:PutImage" in actions:
                pushed_to.add(repo)
    assert pushed_to == allowed


def test_cache_repository_is_mutable_and_disposable(default_synth):
    default_synth.assertions("registry").has_resource(
        "AWS::ECR::Repository",
        {
            "Properties": Match.object_like(
                {
                    "RepositoryName": "dynamo-dev/build-cache",
                    "ImageTagMutability": "MUTABLE",
                    "EncryptionConfiguration": {"EncryptionType": "KMS"},
                }
            ),
            "DeletionPolicy": "Delete",
        },
    )


def test_outputs_name_project_and_log_group(default_synth):
    outputs = default_synth.template("registry")["Outputs"]
    assert {OUTPUT_PROJECT, OUTPUT_LOG_GROUP} <= set(outputs)


def test_compute_and_timeout_follow_config(tmp_path):
    from plan import load_config
    from tests.tools.synth import REPO

    data = yaml.safe_load((REPO / "config" / "default.yaml").read_text())
    data["images"] = {"build": {"compute": "2xlarge", "timeout_minutes": 2160, "log_retention_days": 90}}
    path = tmp_path / "big-build.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    assert cfg.images.build.compute == "2xlarge"

    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.registry_stack import RegistryStack

    app = cdk.App()
    stack = RegistryStack(
        app,
        "r",
        registry=cfg.registry,
        images=cfg.images,
        cluster_name="c1",
        removal_policy=cdk.RemovalPolicy.RETAIN,
        env=cdk.Environment(account="111122223333", region="us-west-2"),
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Environment": Match.object_like({"ComputeType": "BUILD_GENERAL1_2XLARGE"}),
            "TimeoutInMinutes": 2160,
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 90})


@pytest.mark.parametrize(("minutes", "ok"), [(29, False), (30, True), (2160, True), (2161, False)])
def test_timeout_range_is_codebuilds(minutes, ok):
    """CodeBuild accepts TimeoutInMinutes up to 2160 (36 hours)."""
    from pydantic import ValidationError

    from config.images import ImageBuildConfig

    if ok:
        assert ImageBuildConfig(timeout_minutes=minutes).timeout_minutes == minutes
    else:
        with pytest.raises(ValidationError, match="timeout_minutes"):
            ImageBuildConfig(timeout_minutes=minutes)


def _ecr_pull_through_shapes() -> dict:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecr")
    return dict(model.operation_model("CreatePullThroughCacheRule").input_shape.members)


def test_docker_hub_is_pulled_through_an_authenticated_ecr_cache(default_synth):
    """Values ECR and CloudFormation read (cited in config/images.py): Docker Hub's upstream
    URL, and a credential secret whose name starts with ecr-pullthroughcache/."""
    import re

    template = default_synth.template("registry")
    resources = template["Resources"]
    (rule_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::ECR::PullThroughCacheRule"]
    rule = resources[rule_id]["Properties"]
    assert rule["UpstreamRegistryUrl"] == "registry-1.docker.io"
    assert rule["UpstreamRegistry"] == "docker-hub"
    assert rule["EcrRepositoryPrefix"] == "dynamo-dev-docker-hub"
    secret = resources[rule["CredentialArn"]["Ref"]]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    name = secret["Properties"]["Name"]
    assert name == "ecr-pullthroughcache/dynamo-dev-docker-hub"
    # ECR's own CreatePullThroughCacheRule shapes (the pinned botocore model): the secret's
    # ARN must match credentialArn's pattern, the upstream must be one ECR knows.
    shapes = _ecr_pull_through_shapes()
    assert rule["UpstreamRegistry"] in shapes["upstreamRegistry"].enum
    arn = f"arn:aws:secretsmanager:us-west-2:111111111111:secret:{name}-AbCdEf"
    assert re.fullmatch(shapes["credentialArn"].metadata["pattern"], arn)
    # Planted: a secret outside the prefix ECR requires is refused by the same pattern.
    assert not re.fullmatch(
        shapes["credentialArn"].metadata["pattern"], arn.replace("ecr-pullthroughcache/", "")
    )
    # Created empty: the user stores the token; CDK never holds it.
    assert "SecretString" not in secret["Properties"] and "GenerateSecretString" not in secret["Properties"]
    assert secret["DeletionPolicy"] == "Delete"
    assert template["Outputs"]["DockerHubSecretName"]["Value"] == name
    variables = {
        v["Name"]: v["Value"] for v in _project(default_synth)["Environment"]["EnvironmentVariables"]
    }
    assert json.dumps(variables["DOCKER_HUB_MIRROR"]).endswith('/dynamo-dev-docker-hub"]]}')
    assert variables["BUILDKIT_IMAGE"] == "moby/buildkit:v0.31.2"


@pytest.mark.parametrize(
    "name", ["dynamo-dev", "a" * 19, "a" * 20, "x" * 39 + "z", "team-a-inference-us-west-2-prod-cluster"]
)
def test_pull_through_prefix_fits_ecr_limits_and_stays_unique(name):
    import re

    from config.images import docker_hub_cache_prefix

    prefix = docker_hub_cache_prefix(name)
    # ECR CreatePullThroughCacheRule's ecrRepositoryPrefix shape (the pinned botocore model).
    shape = _ecr_pull_through_shapes()["ecrRepositoryPrefix"].metadata
    assert shape["min"] <= len(prefix) <= shape["max"]
    assert re.fullmatch(shape["pattern"], prefix)
    assert docker_hub_cache_prefix(name + "x") != prefix
