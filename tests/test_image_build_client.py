"""`python -m image_build`: start, follow and report a build, driven by botocore Stubber."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.stub import Stubber

from config import versions
from config.names import OUTPUT_LOG_GROUP, OUTPUT_PROJECT
from image_build.cli import main

REGISTRY = "111122223333.dkr.ecr.us-west-2.amazonaws.com"
PROJECT = "dynamo-dev-dynamo-image-build"
LOG_GROUP = f"/aws/codebuild/{PROJECT}"
BUILD_ID = f"{PROJECT}:0b9c7c1e-1d2f-4a3b-9c8d-7e6f5a4b3c2d"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


class FakeSession:
    """boto3.Session stand-in: real clients (so requests are validated) behind Stubbers."""

    def __init__(self, *, credentials: bool = True) -> None:
        self.credentials = Credentials("AKIDEXAMPLE", "secret") if credentials else None
        self.clients = {}
        self.stubbers = {}
        self.configs = {}
        for service in ("cloudformation", "codebuild", "logs", "ecr"):
            client = boto3.client(
                service,
                region_name="us-west-2",
                aws_access_key_id="AKIDEXAMPLE",
                aws_secret_access_key="secret",
            )
            self.clients[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()

    def __call__(self, region_name: str):
        assert region_name == "us-west-2"
        return self

    def get_credentials(self):
        return self.credentials

    def client(self, service: str, config=None):
        self.configs[service] = config
        return self.clients[service]

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def _stack_found(session: FakeSession, stack: str = "dev-registry") -> None:
    session.stubbers["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": stack,
                    "CreationTime": NOW,
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": OUTPUT_PROJECT, "OutputValue": PROJECT},
                        {"OutputKey": OUTPUT_LOG_GROUP, "OutputValue": LOG_GROUP},
                    ],
                }
            ]
        },
        {"StackName": stack},
    )


def _build(
    *,
    framework="vllm",
    efa=False,
    complete=False,
    status="IN_PROGRESS",
    phases=(),
    stream=None,
    exported=None,
):
    build = {
        "id": BUILD_ID,
        "buildStatus": status,
        "buildComplete": complete,
        "currentPhase": phases[-1][0] if phases else "SUBMITTED",
        "phases": [
            {
                "phaseType": p,
                **({"phaseStatus": s} if s else {}),
                **({"contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": m}]} if m else {}),
            }
            for p, s, m in phases
        ],
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_LARGE",
            "environmentVariables": [
                {"name": "FRAMEWORK", "value": framework, "type": "PLAINTEXT"},
                {"name": "EFA", "value": "true" if efa else "false", "type": "PLAINTEXT"},
                {
                    "name": "IMAGE_REPOSITORY_VLLM",
                    "value": f"{REGISTRY}/dynamo-dev/vllm-runtime",
                    "type": "PLAINTEXT",
                },
                {
                    "name": "IMAGE_REPOSITORY_SGLANG",
                    "value": f"{REGISTRY}/dynamo-dev/sglang-runtime",
                    "type": "PLAINTEXT",
                },
                {
                    "name": "IMAGE_REPOSITORY_TRTLLM",
                    "value": f"{REGISTRY}/dynamo-dev/tensorrtllm-runtime",
                    "type": "PLAINTEXT",
                },
            ],
        },
    }
    if stream:
        build["logs"] = {"groupName": LOG_GROUP, "streamName": stream}
    if exported:
        build["exportedEnvironmentVariables"] = [{"name": "IMAGE_URI", "value": exported}]
    return build


def _run(session, *argv) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(
        ["start", *argv, "--config", "config/default.yaml", "--poll-seconds", "0"],
        session_factory=session,
        out=out,
    )
    return rc, out.getvalue()


def _expect_start(session, framework="vllm", efa=False):
    session.stubbers["codebuild"].add_response(
        "start_build",
        {"build": _build(framework=framework, efa=efa)},
        {
            "projectName": PROJECT,
            "environmentVariablesOverride": [
                {"name": "FRAMEWORK", "value": framework, "type": "PLAINTEXT"},
                {"name": "EFA", "value": "true" if efa else "false", "type": "PLAINTEXT"},
                # What this checkout pins, so a bumped version builds with the deployed project.
                {"name": "DYNAMO_VERSION", "value": versions.DYNAMO, "type": "PLAINTEXT"},
                {
                    "name": "DYNAMO_GIT_REPOSITORY",
                    "value": "https://github.com/ai-dynamo/dynamo.git",
                    "type": "PLAINTEXT",
                },
                {
                    "name": f"CUDA_VERSION_{framework.upper()}",
                    "value": {"vllm": "13.0", "sglang": "13.0", "trtllm": "13.1"}[framework],
                    "type": "PLAINTEXT",
                },
                {"name": "RENDER_PIP", "value": " ".join(versions.DYNAMO_RENDER_PIP), "type": "PLAINTEXT"},
                {"name": "BUILDKIT_IMAGE", "value": "moby/buildkit:v0.31.2", "type": "PLAINTEXT"},
            ],
        },
    )


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    from tests.tools.synth import REPO

    monkeypatch.chdir(REPO)


def test_start_without_wait_prints_build_and_image(capsys):
    session = FakeSession()
    _stack_found(session)
    _expect_start(session, framework="sglang", efa=True)
    rc, out = _run(session, "--framework", "sglang", "--efa")
    assert rc == 0
    assert f"started {BUILD_ID} -> {REGISTRY}/dynamo-dev/sglang-runtime:{versions.DYNAMO}-efa" in out
    assert f"follow it: python -m image_build follow {BUILD_ID} --config config/default.yaml\n" in out
    session.verify()


@pytest.fixture
def ngc_pipeline(tmp_path) -> str:
    """The example pipeline with NGC images: each environment keeps its own build project."""
    import yaml

    from tests.tools.synth import REPO

    data = yaml.safe_load((REPO / "config" / "examples" / "pipeline.yaml").read_text())
    data["images"]["source"] = "ngc"
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_follow_hint_keeps_the_environment_of_a_pipeline_config(ngc_pipeline):
    session = FakeSession()
    _stack_found(session, "prod-registry")
    _expect_start(session)
    out = io.StringIO()
    rc = main(
        ["start", "--framework", "vllm", "--config", ngc_pipeline, "--environment", "prod"],
        session_factory=session,
        out=out,
    )
    assert rc == 0
    assert (
        f"follow it: python -m image_build follow {BUILD_ID} --config {ngc_pipeline} --environment prod\n"
    ) in out.getvalue()
    session.verify()


def test_clients_use_adaptive_retries():
    session = FakeSession()
    _stack_found(session)
    _expect_start(session)
    rc, _ = _run(session, "--framework", "vllm")
    assert rc == 0
    assert {name: config.retries for name, config in session.configs.items()} == {
        "cloudformation": {"mode": "adaptive", "max_attempts": 10},
        "codebuild": {"mode": "adaptive", "max_attempts": 10},
    }


def test_follow_keeps_polling_through_throttling():
    """Throttled BatchGetBuilds and GetLogEvents (after botocore's retries) only slow the
    follow down, with backoff up to a minute; the next poll resumes from the same log token."""
    from image_build import client

    session = FakeSession()
    cb, logs = session.stubbers["codebuild"], session.stubbers["logs"]
    stream = "0b9c7c1e-1d2f-4a3b-9c8d-7e6f5a4b3c2d"
    params = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
    for _ in range(7):
        cb.add_client_error(
            "batch_get_builds", "ThrottlingException", "Rate exceeded", expected_params={"ids": [BUILD_ID]}
        )
    cb.add_response(
        "batch_get_builds",
        {"builds": [_build(phases=[("BUILD", None, None)], stream=stream)]},
        {"ids": [BUILD_ID]},
    )
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 1, "message": "line 1"}], "nextForwardToken": "f/1"},
        params,
    )
    logs.add_client_error(
        "get_log_events",
        "ThrottlingException",
        "Rate exceeded",
        expected_params={**params, "nextToken": "f/1"},
    )
    cb.add_response(
        "batch_get_builds",
        {
            "builds": [
                _build(
                    complete=True, status="SUCCEEDED", phases=[("BUILD", "SUCCEEDED", None)], stream=stream
                )
            ]
        },
        {"ids": [BUILD_ID]},
    )
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 2, "message": "line 2"}], "nextForwardToken": "f/2"},
        {**params, "nextToken": "f/1"},
    )
    logs.add_response(
        "get_log_events", {"events": [], "nextForwardToken": "f/2"}, {**params, "nextToken": "f/2"}
    )
    logs.add_response(
        "get_log_events", {"events": [], "nextForwardToken": "f/2"}, {**params, "nextToken": "f/2"}
    )
    slept: list[float] = []
    out = io.StringIO()
    build = client.follow(
        session.clients["codebuild"],
        session.clients["logs"],
        BUILD_ID,
        log_group=LOG_GROUP,
        out=out,
        poll_seconds=10.0,
        sleep=slept.append,
    )
    assert build["buildStatus"] == "SUCCEEDED"
    assert out.getvalue().splitlines() == [
        "==> BUILD: IN_PROGRESS",
        "line 1",
        "==> BUILD: SUCCEEDED",
        "line 2",
    ]
    # Backoff doubles from the poll interval to the one-minute cap; polling then resumes at pace.
    assert slept == [20.0, 40.0, 60.0, 60.0, 60.0, 60.0, 60.0, 10.0, 10.0]
    session.verify()


def test_follow_still_fails_on_errors_that_are_not_throttling():
    from botocore.exceptions import ClientError

    from image_build import client

    session = FakeSession()
    session.stubbers["codebuild"].add_client_error("batch_get_builds", "AccessDeniedException", "no")
    with pytest.raises(ClientError):
        client.follow(
            session.clients["codebuild"],
            session.clients["logs"],
            BUILD_ID,
            log_group=LOG_GROUP,
            out=io.StringIO(),
            sleep=lambda _: None,
        )


def test_wait_streams_phases_and_logs_then_prints_image():
    session = FakeSession()
    _stack_found(session)
    _expect_start(session, framework="trtllm")
    stream = "0b9c7c1e-1d2f-4a3b-9c8d-7e6f5a4b3c2d"
    cb, logs = session.stubbers["codebuild"], session.stubbers["logs"]
    # Poll 1: provisioning, log stream not created yet.
    cb.add_response(
        "batch_get_builds",
        {
            "builds": [
                _build(
                    framework="trtllm",
                    phases=[("SUBMITTED", "SUCCEEDED", None), ("PROVISIONING", None, None)],
                    stream=stream,
                )
            ]
        },
        {"ids": [BUILD_ID]},
    )
    logs.add_client_error(
        "get_log_events", "ResourceNotFoundException", "The specified log stream does not exist."
    )
    # Poll 2: building, two lines then nothing new.
    cb.add_response(
        "batch_get_builds",
        {
            "builds": [
                _build(
                    framework="trtllm",
                    phases=[
                        ("SUBMITTED", "SUCCEEDED", None),
                        ("PROVISIONING", "SUCCEEDED", None),
                        ("BUILD", None, None),
                    ],
                    stream=stream,
                )
            ]
        },
        {"ids": [BUILD_ID]},
    )
    logs.add_response(
        "get_log_events",
        {
            "events": [
                {"timestamp": 1, "message": "cloning v1.6.1\n"},
                {"timestamp": 2, "message": "rendering\n"},
            ],
            "nextForwardToken": "f/1",
        },
        {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True},
    )
    logs.add_response(
        "get_log_events",
        {"events": [], "nextForwardToken": "f/1"},
        {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True, "nextToken": "f/1"},
    )
    # Poll 3: done.
    uri = f"{REGISTRY}/dynamo-dev/tensorrtllm-runtime:{versions.DYNAMO}"
    cb.add_response(
        "batch_get_builds",
        {
            "builds": [
                _build(
                    framework="trtllm",
                    complete=True,
                    status="SUCCEEDED",
                    phases=[("BUILD", "SUCCEEDED", None), ("COMPLETED", None, None)],
                    stream=stream,
                    exported=uri,
                )
            ]
        },
        {"ids": [BUILD_ID]},
    )
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 3, "message": f"pushed {uri}"}], "nextForwardToken": "f/2"},
        {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True, "nextToken": "f/1"},
    )
    logs.add_response(
        "get_log_events",
        {"events": [], "nextForwardToken": "f/2"},
        {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True, "nextToken": "f/2"},
    )
    # After the end: one more read, which finds the line CloudWatch received late.
    logs.add_response(
        "get_log_events",
        {
            "events": [{"timestamp": 4, "message": "Phase complete: UPLOAD_ARTIFACTS"}],
            "nextForwardToken": "f/3",
        },
        {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True, "nextToken": "f/2"},
    )
    logs.add_response(
        "get_log_events",
        {"events": [], "nextForwardToken": "f/3"},
        {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True, "nextToken": "f/3"},
    )
    rc, out = _run(session, "--framework", "trtllm", "--wait")
    assert rc == 0, out
    lines = out.splitlines()
    assert (
        lines.index("==> PROVISIONING: IN_PROGRESS")
        < lines.index("cloning v1.6.1")
        < lines.index("rendering")
    )
    assert "==> BUILD: SUCCEEDED" in lines
    assert lines[-2:] == ["Phase complete: UPLOAD_ARTIFACTS", f"image: {uri}"]
    session.verify()


def test_failed_build_names_the_phase(capsys):
    session = FakeSession()
    _stack_found(session)
    _expect_start(session)
    session.stubbers["codebuild"].add_response(
        "batch_get_builds",
        {
            "builds": [
                _build(
                    complete=True,
                    status="FAILED",
                    phases=[
                        ("PRE_BUILD", "SUCCEEDED", None),
                        (
                            "BUILD",
                            "FAILED",
                            "Error while executing command: docker buildx build. Reason: exit status 1",
                        ),
                        ("POST_BUILD", "SUCCEEDED", None),
                    ],
                )
            ]
        },
        {"ids": [BUILD_ID]},
    )
    rc, _ = _run(session, "--framework", "vllm", "--wait")
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err == (
        f"error: build {BUILD_ID} failed in phase BUILD: Error while executing command: "
        "docker buildx build. Reason: exit status 1"
    )
    session.verify()


def test_stack_not_deployed(capsys):
    session = FakeSession()
    session.stubbers["cloudformation"].add_client_error(
        "describe_stacks", "ValidationError", "Stack with id dev-registry does not exist"
    )
    rc, _ = _run(session, "--framework", "vllm")
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err == (
        "error: stack 'dev-registry' is not deployed in us-west-2; deploy it first with "
        "`cdk deploy dev-registry` (same config as this command)"
    )


def test_no_credentials(capsys):
    session = FakeSession(credentials=False)
    rc, _ = _run(session, "--framework", "vllm")
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("error: no AWS credentials found")


def test_unknown_framework_is_one_line_before_any_call(capsys):
    session = FakeSession()
    rc, _ = _run(session, "--framework", "tensorflow")
    err = capsys.readouterr().err
    assert rc == 2
    assert err == "error: unknown framework 'tensorflow'; use one of vllm, sglang, trtllm\n"
    session.verify()


def test_other_aws_errors_are_one_line(capsys):
    session = FakeSession()
    _stack_found(session)
    session.stubbers["codebuild"].add_client_error(
        "start_build", "AccessDeniedException", "not authorized to perform codebuild:StartBuild"
    )
    rc, _ = _run(session, "--framework", "vllm")
    err = capsys.readouterr().err
    assert rc == 1
    assert (
        err
        == "error: AWS StartBuild failed: AccessDeniedException: not authorized to perform codebuild:StartBuild\n"
    )


def test_pipeline_config_needs_an_environment(capsys, ngc_pipeline):
    out = io.StringIO()
    rc = main(
        ["start", "--framework", "vllm", "--config", ngc_pipeline],
        session_factory=FakeSession(),
        out=out,
    )
    assert rc == 2
    assert "pass --environment with one of dev, prod" in capsys.readouterr().err


def test_pipeline_environment_uses_its_own_stack(capsys, ngc_pipeline):
    session = FakeSession()
    session.stubbers["cloudformation"].add_client_error(
        "describe_stacks",
        "ValidationError",
        "Stack with id prod-registry does not exist",
        expected_params={"StackName": "prod-registry"},
    )
    rc = main(
        ["start", "--framework", "vllm", "--config", ngc_pipeline, "--environment", "prod"],
        session_factory=session,
        out=io.StringIO(),
    )
    assert rc == 1
    assert "stack 'prod-registry' is not deployed" in capsys.readouterr().err
    session.verify()
