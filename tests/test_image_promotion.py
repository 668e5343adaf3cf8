"""Images built once in the tooling account, pulled by pinned digest in every stage.

A pipeline config whose graphs use ECR images gets an Images stage (tooling account) whose
repositories let each environment's account pull; graphs name the image by the digest
recorded in the pipeline's digest file; a step before each stage checks those digests exist.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml

from config import ConfigError, versions
from config.images import ecr_registry
from tests.tools.synth import REPO

pytestmark = pytest.mark.xdist_group("pipeline")

EXAMPLE = REPO / "config" / "examples" / "pipeline.yaml"
TOOLING = "111111111111"
LOCATION = f"{ecr_registry(TOOLING, 'us-west-2')}/dynamo"
DIGEST = "sha256:" + "ab" * 32
TAG = versions.DYNAMO


def _pipeline_config(tmp_path: Path, *, digests: dict[str, str] | None = None, **images) -> str:
    """The example pipeline with the vLLM aggregated example graph, in tmp_path."""
    data = yaml.safe_load(EXAMPLE.read_text())
    graph = yaml.safe_load((REPO / "config/examples/graphs/vllm-agg.yaml").read_text())["graphs"]
    data["graphs"] = graph
    data["images"].update(images)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if digests is not None:
        (tmp_path / "image-digests.yaml").write_text(
            yaml.safe_dump({"registry": LOCATION, "images": digests}, sort_keys=False)
        )
    return str(path)


def _environments(path: str):
    from config.environments import environment_configs
    from plan import load_config

    return environment_configs(load_config(path), path)


# -- config: the digest file and image_uri --------------------------------------------------


def test_graphs_of_every_stage_pull_the_recorded_digest_from_the_tooling_account(tmp_path):
    from plan.images import image_uri

    path = _pipeline_config(tmp_path, digests={f"vllm-runtime:{TAG}": DIGEST})
    for _, env in _environments(path):
        uri = image_uri(env, "vllm-runtime", account=str(env.account))
        assert uri == f"{LOCATION}/vllm-runtime@{DIGEST}"
        # Images the build does not produce stay on NGC, by tag.
        assert image_uri(env, "dynamo-frontend", account=str(env.account)).startswith("nvcr.io/")


def test_a_missing_digest_is_one_line_with_the_build_command(tmp_path):
    from plan.images import image_uri

    path = _pipeline_config(tmp_path, digests={})
    (_, dev), _ = _environments(path)
    with pytest.raises(ConfigError) as err:
        image_uri(dev, "vllm-runtime", account="222222222222", efa=True)
    (line,) = err.value.lines
    assert line.startswith(f"{tmp_path / 'image-digests.yaml'}: images.vllm-runtime:{TAG}-efa: no digest")
    assert f"python -m image_build start --config {path} --framework vllm --efa --wait" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"registry": LOCATION, "images": {f"vllm-runtime:{TAG}": "sha256:abc"}},
            f"images.vllm-runtime:{TAG}: 'sha256:abc' is not a digest",
        ),
        (
            {"registry": LOCATION, "images": {"vllm runtime": DIGEST}},
            "images.vllm runtime: not '<image>:<tag>'",
        ),
        (
            {"registry": "999999999999.dkr.ecr.us-west-2.amazonaws.com/dynamo", "images": {}},
            "registry: digests were recorded for '999999999999.dkr.ecr.us-west-2.amazonaws.com/dynamo'",
        ),
        ({"registry": LOCATION, "digests": {}}, "expected the keys 'registry' and 'images' only"),
    ],
)
def test_bad_digest_file_is_one_line_naming_the_entry(tmp_path, content, expected):
    path = _pipeline_config(tmp_path)
    (tmp_path / "image-digests.yaml").write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError) as err:
        _environments(path)
    (line,) = err.value.lines
    assert line.startswith(f"{tmp_path / 'image-digests.yaml'}: {expected}"), line


def test_record_keeps_the_file_sorted_and_valid(tmp_path):
    from config.image_digests import load, record

    file = tmp_path / "digests.yaml"
    record(file, registry=LOCATION, key="vllm-runtime:2.0.0", digest=DIGEST, config="c.yaml")
    record(file, registry=LOCATION, key="sglang-runtime:2.0.0", digest="sha256:" + "cd" * 32, config="c.yaml")
    record(file, registry=LOCATION, key="vllm-runtime:2.0.0", digest="sha256:" + "ef" * 32, config="c.yaml")
    assert list(load(file, registry=LOCATION).items()) == [
        ("sglang-runtime:2.0.0", "sha256:" + "cd" * 32),
        ("vllm-runtime:2.0.0", "sha256:" + "ef" * 32),
    ]
    assert file.read_text().startswith("# Digests of the Dynamo images")
    with pytest.raises(ValueError):
        record(file, registry=LOCATION, key="vllm-runtime:2.0.0", digest="latest", config="c.yaml")


def test_an_environment_named_like_the_pipeline_images_in_the_tooling_account_is_refused(tmp_path):
    path = _pipeline_config(tmp_path, digests={})
    data = yaml.safe_load(Path(path).read_text())
    data["pipeline"]["environments"][0]["overrides"].update(account=TOOLING, cluster={"name": "dynamo"})
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        _environments(path)
    assert any("is the name of the pipeline's own image repositories" in line for line in err.value.lines)


def test_ngc_only_pipeline_has_no_shared_registry(tmp_path):
    path = _pipeline_config(tmp_path, source="ngc")
    assert all(env.images.shared is None for _, env in _environments(path))


# -- the pipeline: Images stage, pull grants, the check before each stage ------------------


@pytest.fixture(scope="module")
def promoted(tmp_path_factory):
    import aws_cdk as cdk

    from stacks.pipeline_stack import PipelineStack

    tmp_path = tmp_path_factory.mktemp("promoted")
    path = _pipeline_config(tmp_path, digests={f"vllm-runtime:{TAG}": DIGEST})
    from plan import load_config

    stack = PipelineStack(
        cdk.App(),
        "dynamo-pipeline",
        pipeline=load_config(path).pipeline,
        environments=_environments(path),
        config_path="config/p.yaml",
        env=cdk.Environment(account=TOOLING, region="us-west-2"),
    )
    return stack


def _pipeline_props(stack) -> dict:
    from aws_cdk.assertions import Template

    (pipeline,) = Template.from_stack(stack).find_resources("AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]


def test_images_stage_deploys_in_the_tooling_account_before_any_environment(promoted):
    props = _pipeline_props(promoted)
    names = [s["Name"] for s in props["Stages"]]
    assert names.index("Images") < names.index("dev") < names.index("prod")
    (images,) = [s for s in props["Stages"] if s["Name"] == "Images"]
    deploys = [a for a in images["Actions"] if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert {a["Configuration"]["StackName"] for a in deploys} == {"dynamo-images"}
    assert all(TOOLING in json.dumps(a["RoleArn"]) for a in deploys)


def test_tooling_repositories_let_each_environment_account_pull_only(promoted):
    from aws_cdk.assertions import Template

    assert promoted.images_stage is not None
    template = Template.from_stack(promoted.images_stage.registry).to_json()
    runtime = {
        r["Properties"]["RepositoryName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ECR::Repository" and r["Properties"]["RepositoryName"] != "dynamo/build-cache"
    }
    assert "dynamo/vllm-runtime" in runtime
    for props in runtime.values():
        (statement,) = props["RepositoryPolicyText"]["Statement"]
        assert statement["Effect"] == "Allow"
        assert sorted(statement["Action"]) == [
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        ]
        principals = json.dumps(statement["Principal"])
        assert re.findall(r"iam::(\d{12}):root", principals) == ["222222222222", "333333333333"]
    # The build runs there, once.
    assert any(r["Type"] == "AWS::CodeBuild::Project" for r in template["Resources"].values())


def test_environment_registries_build_nothing(promoted):
    from aws_cdk.assertions import Template

    for stage in promoted.stages:
        resources = Template.from_stack(stage.stacks.registry).to_json()["Resources"].values()
        types = {r["Type"] for r in resources}
        assert types == {"AWS::ECR::Repository"}
        names = {r["Properties"]["RepositoryName"] for r in resources}
        assert not any(name.endswith("/build-cache") for name in names)


def test_inference_templates_of_every_stage_name_the_digest(promoted):
    from aws_cdk.assertions import Template

    for stage in promoted.stages:
        (inference,) = stage.stacks.inference
        text = json.dumps(Template.from_stack(inference).to_json())
        assert f"{LOCATION}/vllm-runtime@{DIGEST}" in text
        # No tag-addressed image of our registries reaches a stage.
        assert not re.search(r"dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[^\"\\\\]*:" + re.escape(TAG), text)


def test_each_stage_first_checks_that_its_digests_exist(promoted):
    from aws_cdk.assertions import Template

    props = _pipeline_props(promoted)
    stages = {s["Name"]: {a["Name"]: a for a in s["Actions"]} for s in props["Stages"]}
    for env in ("dev", "prod"):
        actions = stages[env]
        check = actions[f"CheckImages-{env}"]
        first_change = min(a["RunOrder"] for n, a in actions.items() if n.endswith(".Prepare"))
        assert check["RunOrder"] < first_change
        assert check["ActionTypeId"]["Provider"] == "CodeBuild"
    prod = stages["prod"]
    assert prod["CheckImages-prod"]["RunOrder"] < prod["CheckBroadening-prod.Check"]["RunOrder"]
    template = Template.from_stack(promoted).to_json()
    specs = [
        json.loads(r["Properties"]["Source"]["BuildSpec"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CodeBuild::Project"
        and "describe-images" in r["Properties"]["Source"]["BuildSpec"]
    ]
    assert len(specs) == 2
    for spec in specs:
        (command,) = spec["phases"]["build"]["commands"]
        assert (
            "aws ecr describe-images --region us-west-2 --registry-id 111111111111 "
            f"--repository-name dynamo/vllm-runtime --image-ids imageDigest={DIGEST}"
        ) in command
        assert "exit 1" in command
    # The check's role may describe only that repository of the tooling account.
    policies = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "ecr:DescribeImages"
    ]
    assert policies
    for statement in policies:
        assert "111111111111:repository/dynamo/vllm-runtime" in json.dumps(statement["Resource"])


def test_the_check_command_fails_for_a_missing_image_and_passes_for_a_present_one(tmp_path):
    """The generated shell, run with a stand-in `aws` that answers like describe-images."""
    import subprocess

    from stacks.image_check import check_commands, pinned_images

    path = _pipeline_config(tmp_path, digests={f"vllm-runtime:{TAG}": DIGEST})
    (_, dev), _ = _environments(path)
    shared = dev.images.shared
    commands = check_commands(shared, pinned_images(dev), "dev")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text('#!/bin/bash\necho "$@" >> "$CALLS"\nexit "${AWS_RC:-0}"\n')
    (bin_dir / "aws").chmod(0o755)
    for rc, expected in ((0, 0), (254, 1)):
        result = subprocess.run(
            ["bash", "-c", "\n".join(commands)],
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls"), "AWS_RC": str(rc)},
            capture_output=True,
            text=True,
        )
        assert result.returncode == expected, result.stderr
    assert "which graphs of dev pull, is not in the tooling account's repository" in result.stderr
    assert "--framework vllm --wait" in result.stderr


# -- python -m image_build with a promoting pipeline ----------------------------------------


def _session():
    from tests.test_image_build_client import FakeSession

    return FakeSession()


def test_build_runs_in_the_tooling_images_stack_and_refuses_an_environment(tmp_path, capsys):
    from image_build.cli import main

    path = _pipeline_config(tmp_path, digests={})
    rc = main(
        ["start", "--framework", "vllm", "--config", path, "--environment", "dev"],
        session_factory=_session(),
        out=io.StringIO(),
    )
    assert rc == 2
    assert "builds its images once, in the tooling account 111111111111 (stack dynamo-images)" in (
        capsys.readouterr().err
    )
    session = _session()
    session.stubbers["cloudformation"].add_client_error(
        "describe_stacks",
        "ValidationError",
        "Stack with id dynamo-images does not exist",
        expected_params={"StackName": "dynamo-images"},
    )
    rc = main(["start", "--framework", "vllm", "--config", path], session_factory=session, out=io.StringIO())
    assert rc == 1
    assert "stack 'dynamo-images' is not deployed" in capsys.readouterr().err
    session.verify()


def test_a_successful_build_records_its_digest(tmp_path):
    from image_build.cli import main
    from tests.test_image_build_client import BUILD_ID, _build, _expect_start, _stack_found

    path = _pipeline_config(tmp_path, digests={})
    session = _session()
    _stack_found(session, "dynamo-images")
    _expect_start(session)
    uri = f"{LOCATION}/vllm-runtime:{TAG}"
    session.stubbers["codebuild"].add_response(
        "batch_get_builds",
        {"builds": [_build(complete=True, status="SUCCEEDED", exported=uri)]},
        {"ids": [BUILD_ID]},
    )
    session.stubbers["ecr"].add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": DIGEST, "imageTags": [TAG]}]},
        {"registryId": TOOLING, "repositoryName": "dynamo/vllm-runtime", "imageIds": [{"imageTag": TAG}]},
    )
    out = io.StringIO()
    rc = main(
        ["start", "--framework", "vllm", "--wait", "--config", path, "--poll-seconds", "0"],
        session_factory=session,
        out=out,
    )
    assert rc == 0, out.getvalue()
    session.verify()
    assert f"recorded vllm-runtime:{TAG} = {DIGEST}" in out.getvalue()
    # The next synth of any stage pins exactly that digest.
    from plan.images import image_uri

    (_, dev), _ = _environments(path)
    assert image_uri(dev, "vllm-runtime", account="222222222222") == f"{LOCATION}/vllm-runtime@{DIGEST}"


def test_record_of_an_image_that_is_not_there_is_one_line(tmp_path, capsys):
    from image_build.cli import main

    path = _pipeline_config(tmp_path, digests={})
    session = _session()
    session.stubbers["ecr"].add_client_error(
        "describe_images",
        "ImageNotFoundException",
        "The image with imageId {imageTag:'1.6.1-efa'} does not exist",
        expected_params={
            "registryId": TOOLING,
            "repositoryName": "dynamo/sglang-runtime",
            "imageIds": [{"imageTag": f"{TAG}-efa"}],
        },
    )
    rc = main(
        ["record", "--framework", "sglang", "--efa", "--config", path],
        session_factory=session,
        out=io.StringIO(),
    )
    assert rc == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"error: dynamo/sglang-runtime:{TAG}-efa is not in account {TOOLING}; build it first "
        "(python -m image_build start ... --wait records its digest)"
    )
    assert not (tmp_path / "image-digests.yaml").read_text().count("sglang")


def test_record_needs_a_promoting_pipeline(capsys):
    from image_build.cli import main

    rc = main(
        ["record", "--framework", "vllm", "--config", str(REPO / "config" / "default.yaml")],
        session_factory=_session(),
        out=io.StringIO(),
    )
    assert rc == 2
    assert "records no digests" in capsys.readouterr().err


def test_cdk_nag_and_cfn_lint_clean_with_image_checks(tmp_path):
    """The gates of tests/test_gates.py, for a promoting pipeline with graphs (the example
    pipeline has none, so its synth has no CheckImages step)."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from app import new_app
    from plan import load_config
    from stacks.pipeline_stack import PipelineStack
    from tests.tools.cfn_lint import lint

    path = _pipeline_config(tmp_path, digests={f"vllm-runtime:{TAG}": DIGEST})
    outdir = tmp_path / "out"
    app = new_app(outdir=str(outdir))
    PipelineStack(
        app,
        "dynamo-pipeline",
        pipeline=load_config(path).pipeline,
        environments=_environments(path),
        config_path="config/p.yaml",
        env=cdk.Environment(account=TOOLING, region="us-west-2"),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == [] and nag["conclusion"] == "success"
    template = Path(assembly.get_stack_by_name("dynamo-pipeline").template_full_path)
    assert "CheckImages-prod" in template.read_text()
    assert lint(template, ["us-west-2"]) == []
