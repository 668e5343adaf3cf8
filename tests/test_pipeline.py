"""Pipeline: CDK Pipelines from config/examples/pipeline.yaml, and pipeline config errors."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from config import ConfigError
from plan import load_config
from tests.tools.synth import REPO, synth

EXAMPLE = REPO / "config" / "examples" / "pipeline.yaml"
pytestmark = pytest.mark.xdist_group("pipeline")


@pytest.fixture(scope="module")
def result():
    return synth(EXAMPLE)


@pytest.fixture(scope="module")
def pipeline(result):
    template = result.templates["dynamo-pipeline"]
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return template, resource["Properties"]


def _stage_names(pipeline_props) -> list[str]:
    return [s["Name"] for s in pipeline_props["Stages"]]


def test_stages_run_dev_then_approval_then_prod(pipeline):
    """prod waits for a person after its own change sets exist, stack by stack, and first
    stops on any IAM or security-group broadening."""
    _, props = pipeline
    assert _stage_names(props)[:3] == ["Source", "Build", "UpdatePipeline"]
    stages = {s["Name"]: s for s in props["Stages"]}
    names = _stage_names(props)
    assert names.index("dev") < names.index("prod")
    assert not any(a["ActionTypeId"]["Category"] == "Approval" for a in stages["dev"]["Actions"])
    prod = {a["Name"]: a for a in stages["prod"]["Actions"]}
    order = {name: action["RunOrder"] for name, action in prod.items()}
    check, confirm = order["CheckBroadening-prod.Check"], order["CheckBroadening-prod.Confirm"]
    assert prod["CheckBroadening-prod.Confirm"]["ActionTypeId"]["Provider"] == "Manual"
    assert check < confirm < min(order[n] for n in order if n.endswith(".Prepare"))
    stacks = [n.removesuffix(".Prepare") for n in order if n.endswith(".Prepare")]
    assert {"network", "cluster", "registry", "platform"} <= set(stacks)
    for stack in stacks:
        approve = f"{stack}.Approve-prod-{stack}"
        assert prod[approve]["ActionTypeId"] == {
            "Category": "Approval",
            "Owner": "AWS",
            "Provider": "Manual",
            "Version": "1",
        }
        assert order[f"{stack}.Prepare"] < order[approve] < order[f"{stack}.Deploy"]
        assert "Change sets" in prod[approve]["Configuration"]["CustomData"]


def test_each_stage_deploys_into_its_own_account(pipeline):
    _, props = pipeline
    stages = {s["Name"]: s for s in props["Stages"]}
    for stage, account in (("dev", "222222222222"), ("prod", "333333333333")):
        deploys = [a for a in stages[stage]["Actions"] if a["ActionTypeId"]["Provider"] == "CloudFormation"]
        assert deploys
        for action in deploys:
            assert account in json.dumps(action["RoleArn"])
            assert action["Configuration"]["StackName"].startswith(f"{stage}-")


def test_source_is_the_configured_connection(pipeline):
    _, props = pipeline
    (source,) = props["Stages"][0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "my-org/dynamo-eks"
    assert source["Configuration"]["BranchName"] == "main"
    assert source["Configuration"]["ConnectionArn"].startswith(
        "arn:aws:codeconnections:us-west-2:111111111111:"
    )


def test_synth_step_runs_make_synth_with_this_config(result):
    template = result.templates["dynamo-pipeline"]
    specs = [
        json.loads(r["Properties"]["Source"]["BuildSpec"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CodeBuild::Project"
        and "make synth" in r["Properties"]["Source"].get("BuildSpec", "")
    ]
    (spec,) = specs
    assert spec["phases"]["build"]["commands"] == ["make synth CONFIG=config/examples/pipeline.yaml"]
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_self_mutation_uses_the_cli_pinned_in_package_json(result):
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["aws-cdk"]
    template = json.dumps(result.templates["dynamo-pipeline"])
    assert f"npm install -g aws-cdk@{pinned}" in template


def _artifact_bucket_and_key(template: dict) -> tuple[dict, dict]:
    resources = template["Resources"]
    (bucket,) = [r for r in resources.values() if r["Type"] == "AWS::S3::Bucket"]
    key_id = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    return bucket, resources[key_id]


def test_cross_account_keys_with_rotation(result):
    template = result.templates["dynamo-pipeline"]
    keys = [r for r in template["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    # The artifact key and the notification topic's key.
    assert len(keys) == 2 and all(k["Properties"]["EnableKeyRotation"] is True for k in keys)
    _, key = _artifact_bucket_and_key(template)
    principals = json.dumps(key["Properties"]["KeyPolicy"])
    assert "222222222222" in principals and "333333333333" in principals


def test_artifact_bucket_and_its_key_are_both_retained_and_artifacts_expire(result):
    bucket, key = _artifact_bucket_and_key(result.templates["dynamo-pipeline"])
    assert bucket["DeletionPolicy"] == key["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == key["UpdateReplacePolicy"] == "Retain"
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == 90
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_every_pipeline_codebuild_project_logs_with_retention(result):
    """Synth, self-update, the asset projects (and post-deploy steps): no project writes to
    a /aws/codebuild/<project> group CodeBuild would create without expiry."""
    from aws_cdk.assertions import Match, Template

    template = result.templates["dynamo-pipeline"]
    groups = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    # Every group of the stack (the CodeBuild one, the drift check's) expires and follows
    # the example's removal_policy: destroy.
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {30}
    assert {g["DeletionPolicy"] for g in groups.values()} == {"Delete"}
    projects = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"]
    (group,) = {p["Properties"]["LogsConfig"]["CloudWatchLogs"]["GroupName"]["Ref"] for p in projects}
    assert group in groups
    assert len(projects) == 9  # + the permissions-broadening check before prod
    streams = set()
    for project in projects:
        logs = project["Properties"]["LogsConfig"]["CloudWatchLogs"]
        assert logs["GroupName"] == {"Ref": group} and logs["Status"] == "ENABLED"
        streams.add(logs["StreamName"])
    assert streams == {"synth", "self-update", "assets", "security-check"}
    Template.from_json(template).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": {"Fn::GetAtt": [group, "Arn"]},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_failures_and_pending_approvals_are_notified(result):
    from aws_cdk.assertions import Match, Template

    template = Template.from_json(result.templates["dynamo-pipeline"])
    template.has_resource_properties(
        "AWS::CodeStarNotifications::NotificationRule",
        {
            "EventTypeIds": Match.array_equals(
                [
                    "codepipeline-pipeline-pipeline-execution-failed",
                    "codepipeline-pipeline-pipeline-execution-canceled",
                    "codepipeline-pipeline-action-execution-failed",
                    "codepipeline-pipeline-manual-approval-needed",
                ]
            ),
            "Targets": [{"TargetType": "SNS", "TargetAddress": Match.any_value()}],
        },
    )
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [Match.object_like({"Principal": {"Service": "codestar-notifications.amazonaws.com"}})]
                )
            }
        },
    )
    assert "NotificationTopicArn" in result.templates["dynamo-pipeline"]["Outputs"]


def test_stage_stacks_are_the_environment_stacks(result):
    names = set(result.templates)
    for env in ("dev", "prod"):
        assert {f"{env}-network", f"{env}-cluster", f"{env}-registry"} <= names
    prod_repo = result.templates["prod-registry"]
    retained = [
        r
        for r in prod_repo["Resources"].values()
        if r["Type"] == "AWS::ECR::Repository"
        and r["Properties"]["RepositoryName"].startswith("dynamo-prod/")
        and "runtime" in r["Properties"]["RepositoryName"]
    ]
    assert retained and {r["DeletionPolicy"] for r in retained} == {"Retain"}


@pytest.fixture
def config_file(tmp_path):
    def make(mutate) -> str:
        data = yaml.safe_load(EXAMPLE.read_text())
        mutate(data)
        path = tmp_path / "pipeline.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return str(path)

    return make


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["pipeline"].update(account="12345"),
            "pipeline.account: '12345' is not an AWS account id",
        ),
        (
            lambda d: d["pipeline"].update(connection_arn="arn:aws:codestar:us-west-2:1:x"),
            "pipeline.connection_arn: 'arn:aws:codestar:us-west-2:1:x' is not a CodeConnections connection ARN",
        ),
        (
            lambda d: d["pipeline"].update(repository="dynamo-eks"),
            "pipeline.repository: 'dynamo-eks' is not owner/name",
        ),
        (
            lambda d: d["pipeline"].update(notification_emails=["ops"]),
            "pipeline.notification_emails: 'ops' is not an email address",
        ),
        (
            lambda d: d["pipeline"].update(image_digests="../digests.yaml"),
            "pipeline.image_digests: '../digests.yaml' is not a file name next to the pipeline config",
        ),
        (
            lambda d: d["pipeline"].update(drift_check={"schedule": "rate(1 days)"}),
            "pipeline.drift_check.schedule: 'rate(1 days)': EventBridge wants the singular unit for 1",
        ),
        (
            lambda d: d["pipeline"]["environments"][1]["overrides"].update(account="3333"),
            "pipeline.environments.1 (prod): account: '3333' is not an AWS account id",
        ),
        (
            lambda d: d["pipeline"]["environments"][1]["overrides"].pop("account"),
            "pipeline.environments.1.overrides: overrides must set 'account'",
        ),
        (
            lambda d: d["pipeline"]["environments"][1]["overrides"].update(environment="dev"),
            "pipeline.environments.1 (dev): environment 'dev' is already used by pipeline.environments.0",
        ),
        (
            lambda d: d["pipeline"]["environments"][1]["overrides"].update(
                account="222222222222", cluster={"name": "dynamo-dev"}
            ),
            "pipeline.environments.1 (prod): cluster.name 'dynamo-dev' is already used by "
            "pipeline.environments.0 (dev) in account 222222222222; IAM role names, ECR repositories, "
            "the image-build project and the interruption queue derive from it, so set a distinct "
            "cluster.name in one of their overrides",
        ),
        (
            lambda d: d["pipeline"]["environments"][0]["overrides"]["cluster"].update(nmae="x"),
            "pipeline.environments.0 (dev): cluster.nmae: unknown key 'nmae'; did you mean 'name'?",
        ),
        (
            lambda d: d["pipeline"]["environments"][0]["overrides"].update(region="eu-west-1"),
            "pipeline.environments.0 (dev): network.availability_zones: 'us-west-2a' is not a zone of eu-west-1",
        ),
    ],
)
def test_bad_pipeline_settings_are_one_line(config_file, mutate, expected):
    path = config_file(mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert len(err.value.lines) == 1, err.value.lines
    assert err.value.lines[0].startswith(f"{path}: {expected}")


def test_same_cluster_name_in_different_accounts_is_fine(config_file):
    from config.environments import environment_configs

    path = config_file(
        lambda d: d["pipeline"]["environments"][1]["overrides"].update(cluster={"name": "dynamo-dev"})
    )
    cfg = load_config(path)
    names = [(env.account, env.cluster.name) for _, env in environment_configs(cfg, path)]
    assert names == [("222222222222", "dynamo-dev"), ("333333333333", "dynamo-dev")]


def test_post_deploy_step_runs_after_its_stage(config_file):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from config.environments import environment_configs
    from stacks.pipeline_stack import PipelineStack

    def mutate(d):
        d["pipeline"]["environments"][0].update(post_deploy=["make validate CONFIG=config/default.yaml"])
        d["pipeline"]["notification_emails"] = ["platform@example.com"]

    path = config_file(mutate)
    cfg = load_config(path)
    stack = PipelineStack(
        cdk.App(),
        "p",
        pipeline=cfg.pipeline,
        environments=environment_configs(cfg, path),
        config_path="config/p.yaml",
        env=cdk.Environment(account="111111111111", region="us-west-2"),
    )
    props = Template.from_stack(stack).find_resources("AWS::CodePipeline::Pipeline")
    (pipeline,) = props.values()
    (dev,) = [s for s in pipeline["Properties"]["Stages"] if s["Name"] == "dev"]
    actions = sorted(dev["Actions"], key=lambda a: a["RunOrder"])
    assert actions[-1]["Name"] == "PostDeploy-dev"
    assert actions[-1]["ActionTypeId"]["Provider"] == "CodeBuild"
    # The post-deploy step logs to the pipeline's group too; the address gets notifications.
    projects = Template.from_stack(stack).find_resources("AWS::CodeBuild::Project")
    assert {p["Properties"]["LogsConfig"]["CloudWatchLogs"]["StreamName"] for p in projects.values()} >= {
        "step"
    }
    Template.from_stack(stack).has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "platform@example.com"}
    )


def test_pipeline_config_outside_the_repository_is_refused(tmp_path):
    import aws_cdk as cdk

    from app import build_app

    path = tmp_path / "pipeline.yaml"
    path.write_text(EXAMPLE.read_text())
    with pytest.raises(ConfigError) as err:
        build_app(cdk.App(), str(path))
    assert "must live inside the repository" in err.value.lines[0]


@pytest.mark.xdist_group("cli")
def test_make_synth_of_the_pipeline_config_is_offline(tmp_path):
    env = {
        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    result = subprocess.run(
        [
            str(REPO / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--no-notices",
            "--quiet",
            "--no-version-reporting",
            "-c",
            "config=config/examples/pipeline.yaml",
            "-o",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "dynamo-pipeline" in manifest["artifacts"]
    stage_assemblies = {a for a in manifest["artifacts"] if a.startswith("assembly-")}
    assert {"assembly-dynamo-pipeline-dev", "assembly-dynamo-pipeline-prod"} <= stage_assemblies
