"""`ops review` (issue 17): offline PR review of a change, per environment.

The core (`ops.review.compare`) runs on the everyday-change corpus of
tests/tools/review_corpus.py: each variant is synthesized once in this process and compared
with its base through the real pinned `cdk diff`. The git-worktree layer and the command
line run once each on this repository. Nothing here has AWS credentials.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
import yaml

from ops import review as rv
from tests.tools import review_corpus as corpus
from tests.tools.synth import REPO

pytestmark = pytest.mark.xdist_group("review")

EVERYDAY = [
    "add_graph",
    "change_model",
    "change_replicas",
    "add_gpu_pool",
    "monitoring_settings",
    corpus.DYNAMO_PATCH,
    "monitoring_on",
    "add_environment",
]


# Real broadenings, reported with exit 4 (README: "Review a change"): a new environment lets
# the pipeline's artifacts bucket and key be read by that account's deploy role, and its
# account pull the pipeline's images (the tooling Images stack's repository policies);
# monitoring on lets External Secrets read the new Grafana admin secret.
EXPECTED_BROADENING = {
    "add_environment": ["dynamo-pipeline", "dynamo-images"],
    "monitoring_on": ["dev-platform"],
}


# The default config's first graph, which the graph variants edit.
FIRST_GRAPH = f"DynamoGraphDeployment/dynamo/{corpus.first_graph_name()}.yaml"


@pytest.fixture(scope="module", autouse=True)
def _scratch():
    yield
    reviewed.cache_clear()
    for folder in _OUTPUTS:
        shutil.rmtree(folder, ignore_errors=True)
    _OUTPUTS.clear()
    corpus.cleanup()


_OUTPUTS: list[Path] = []


def _no_aws_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        AWS_EC2_METADATA_DISABLED="true",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


@functools.cache
def reviewed(name: str) -> tuple[rv.Review, Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"review-{name}-"))
    _OUTPUTS.append(folder)
    out = folder / "review"
    base_name, head_name = corpus.PAIRS[name] if name in corpus.PAIRS else (corpus.base_of(name), name)
    base, head = corpus.assembly(base_name), corpus.assembly(head_name)
    with mock.patch.dict(os.environ, _no_aws_env(), clear=True):  # cdk diff sees no AWS settings
        result = rv.compare(base, head, out, base_label=base_name, head_label=head_name)
    rv.write_outputs(result, out)
    return result, out


def _stateful(result: rv.Review) -> list[str]:
    return [f"{s.stack_name}: {c.type} {c.path} {c.impact}" for s, c, _ in result.stateful]


# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("name", EVERYDAY)
def test_everyday_change_replaces_no_stateful_resource(name):
    result, out = reviewed(name)
    assert result.changed, f"{name}: the variant should change something"
    assert _stateful(result) == [], f"{name} replaces or deletes stateful resources"
    summary = (out / "summary.md").read_text()
    assert "No changes" not in summary and "Stateful resources replaced" not in summary
    broadening = EXPECTED_BROADENING.get(name, [])
    assert [s.stack_name for s in result.broadening] == broadening, f"{name} broadens IAM/security"
    expected = rv.EXIT_BROADENING if broadening else rv.EXIT_OK
    assert result.exit_code == expected
    assert json.loads((out / "status.json").read_text())["exit_code"] == expected


def _manifests(name: str, environment: str = "dev") -> rv.ManifestReview:
    result, _ = reviewed(name)
    (manifests,) = [m for m in result.manifests if m.environment == environment]
    return manifests


def test_add_graph_adds_one_graph_and_touches_no_other_object():
    m = _manifests("add_graph")
    assert "DynamoGraphDeployment/dynamo/qwen3-8b-agg.yaml" in m.added
    assert not m.removed
    assert not [n for n in m.changed if n.startswith("DynamoGraphDeployment/")]


def test_replicas_change_only_the_graph():
    m = _manifests("change_replicas")
    assert m.changed == [FIRST_GRAPH] and not m.added and not m.removed


def test_add_gpu_pool_adds_its_nodepool_and_nodeclass():
    m = _manifests("add_gpu_pool")
    assert "NodePool/_cluster/gpu-g6-ondemand.yaml" in m.added
    assert not m.removed


def test_monitoring_settings_change_the_prometheus_release():
    m = _manifests("monitoring_settings")
    assert "HelmRelease/monitoring/kube-prometheus-stack.yaml" in m.changed
    assert not m.added and not m.removed


def test_dynamo_patch_moves_chart_and_images():
    m = _manifests(corpus.DYNAMO_PATCH)
    assert "HelmRelease/dynamo-system/dynamo-platform.yaml" in m.changed
    assert FIRST_GRAPH in m.changed
    _, out = reviewed(corpus.DYNAMO_PATCH)
    diff = (out / "dev" / "manifests.diff").read_text()
    from config import versions

    assert f"-version: {versions.DYNAMO}\n+version: {corpus.patch_version(versions.DYNAMO)}\n" in diff


def test_monitoring_off_deletes_the_grafana_admin_secret_loudly():
    """Turning monitoring off deletes Grafana and its generated admin password: the one
    stateful deletion in the corpus, reported with exit 3 (README: "Review a change")."""
    result, _ = reviewed("monitoring_off")
    ((stack, change, _),) = result.stateful
    assert (stack.stack_name, change.type, change.impact) == (
        "dev-platform",
        "AWS::SecretsManager::Secret",
        "destroy",
    )
    assert "GrafanaAdmin" in change.logical_id
    assert result.exit_code == rv.EXIT_STATEFUL
    m = _manifests("monitoring_off")
    assert "HelmRelease/monitoring/kube-prometheus-stack.yaml" in m.removed
    assert not [
        n
        for n in m.removed
        if n.startswith(("DynamoGraphDeployment/", "NodePool/", "HelmRelease/dynamo-system/"))
    ]


def test_add_environment_adds_its_stacks_and_leaves_the_others():
    result, _ = reviewed("add_environment")
    by_env = {}
    for stack in result.stacks:
        by_env.setdefault(stack.environment, set()).add(stack.status)
    assert by_env["staging"] == {"added"}
    assert by_env["dev"] == {"unchanged"} and by_env["prod"] == {"unchanged"}
    assert not [
        m for m in result.manifests if m.environment != "staging" and (m.added or m.changed or m.removed)
    ]


def test_cluster_rename_is_a_replacement_of_the_eks_cluster():
    result, out = reviewed("rename_cluster")
    assert result.exit_code == rv.EXIT_STATEFUL
    replaced = {(c.type, c.impact) for _, c, _ in result.stateful}
    assert ("AWS::EKS::Cluster", "replace") in replaced
    assert ("AWS::EKS::Nodegroup", "replace") in replaced
    summary = (out / "summary.md").read_text()
    assert summary.index("Stateful resources replaced") < summary.index("### Stacks")
    assert "| dev | dev-cluster | `Cluster` | AWS::EKS::Cluster |" in summary
    assert rv.ACCEPT_REPLACEMENT_LABEL in summary
    status = json.loads((out / "status.json").read_text())
    assert status["exit_code"] == 3 and any(s["type"] == "AWS::EKS::Cluster" for s in status["stateful"])


def test_max_model_len_is_a_small_yaml_diff_of_one_graph():
    result, out = reviewed("max_model_len")
    m = _manifests("max_model_len")
    assert m.changed == [FIRST_GRAPH] and not m.added and not m.removed
    diff = (out / m.diff_file).read_text().splitlines()
    changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    before, after = corpus.max_model_len_values()
    # each engine component (prefill and decode in the default graph) passes it once
    assert changed and set(changed) == {f"-          - '{before}'", f"+          - '{after}'"}, "\n".join(
        diff
    )
    assert len(changed) <= 4
    assert [s.stack_name for s in result.stacks if s.status != "unchanged"] == ["dev-inference"]
    assert result.exit_code == rv.EXIT_OK


def test_same_assembly_is_no_changes(tmp_path):
    base = corpus.assembly("default")
    result = rv.compare(base, base, tmp_path / "review")
    rv.write_outputs(result, tmp_path / "review")
    assert not result.changed and result.exit_code == 0
    assert "No changes" in (tmp_path / "review" / "summary.md").read_text()


# --------------------------------------------------------------------------- pieces


SAMPLE_DIFF = """Stack dev-cluster
IAM Statement Changes
┌───┬──────────┐
│ + │ thing    │
└───┴──────────┘
Resources
[+] AWS::SQS::Queue Karpenter/Queue KarpenterQueue1234 
[~] AWS::EKS::Cluster Cluster ClusterEB0386A7 replace
 ├─ [~] Name (requires replacement)
 │   ├─ [-] a
 │   └─ [+] b
[~] AWS::EFS::FileSystem ModelCache/FileSystem ModelCacheFs12 may be replaced
[-] AWS::Logs::LogGroup FlowLogs FlowLogs99 orphan
[-] AWS::ECR::Repository vllm-runtime vllmruntime00 destroy

Outputs
[~] Output UpdateKubeconfigCommand UpdateKubeconfigCommand: {"a":1}
"""


def test_parse_cdk_diff_reads_impacts_from_the_cli_output():
    changes, security = rv.parse_cdk_diff(SAMPLE_DIFF)
    assert [(c.op, c.type, c.path, c.logical_id, c.impact) for c in changes] == [
        ("+", "AWS::SQS::Queue", "Karpenter/Queue", "KarpenterQueue1234", ""),
        ("~", "AWS::EKS::Cluster", "Cluster", "ClusterEB0386A7", "replace"),
        ("~", "AWS::EFS::FileSystem", "ModelCache/FileSystem", "ModelCacheFs12", "may be replaced"),
        ("-", "AWS::Logs::LogGroup", "FlowLogs", "FlowLogs99", "orphan"),
        ("-", "AWS::ECR::Repository", "vllm-runtime", "vllmruntime00", "destroy"),
    ]
    assert security.startswith("IAM Statement Changes") and "│ + │ thing" in security


def test_manifests_with_tokens_render_as_yaml():
    template = json.loads(next(corpus.assembly("default").glob("dev-cluster.template.json")).read_text())
    objects = rv.embedded_objects(template)
    pools = [name for name in objects if name.startswith("EC2NodeClass/")]
    assert pools, sorted(objects)
    text = rv.to_yaml(objects[pools[0]][1])
    assert "${" in text  # role names, cluster tokens shown as ${...}
    assert yaml.safe_load(text)["kind"] == "EC2NodeClass"
    assert "HelmRelease/kube-system/karpenter.yaml" in objects


@pytest.mark.parametrize(
    ("status", "labels", "code"),
    [
        ({"exit_code": 0, "stateful": [], "broadening": []}, "", 0),
        ({"exit_code": 3, "stateful": [{"type": "AWS::EKS::Cluster"}], "broadening": []}, "", 1),
        (
            {"exit_code": 3, "stateful": [{"type": "AWS::EKS::Cluster"}], "broadening": []},
            rv.ACCEPT_REPLACEMENT_LABEL,
            0,
        ),
        ({"exit_code": 3, "stateful": [{}], "broadening": ["dev-cluster"]}, rv.ACCEPT_REPLACEMENT_LABEL, 1),
        (
            {"exit_code": 4, "stateful": [], "broadening": ["dev-cluster"]},
            f"x,{rv.ACCEPT_BROADENING_LABEL}",
            0,
        ),
        ({"exit_code": 1, "error": "boom"}, f"{rv.ACCEPT_REPLACEMENT_LABEL},{rv.ACCEPT_BROADENING_LABEL}", 1),
    ],
)
def test_gate_honours_labels(tmp_path, status, labels, code):
    path = tmp_path / "status.json"
    path.write_text(json.dumps(status))
    result = subprocess.run(
        [sys.executable, "-m", "ops.review", "gate", str(path), "--labels", labels],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr


def test_gate_without_status_fails(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ops.review", "gate", str(tmp_path / "missing.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "did not finish" in result.stderr


# --------------------------------------------------------------------------- command line + worktree


def _ops(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ops", "review", *args],
        cwd=cwd,
        env=_no_aws_env(),
        capture_output=True,
        text=True,
    )


def test_worktree_base_and_head_at_the_same_commit_is_no_changes(tmp_path):
    """The git layer: HEAD synthesized in two temporary worktrees with the pinned CLI.

    (`--head HEAD` rather than the working tree, so edits in progress elsewhere in this
    checkout cannot make the test flaky; the working-tree path is the same synth call.)
    """
    out = tmp_path / "review"
    result = _ops("--base", "HEAD", "--head", "HEAD", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes" in (out / "summary.md").read_text()
    assert json.loads((out / "status.json").read_text())["exit_code"] == 0
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True).stdout
    assert "dynamo-review-" not in worktrees


def test_cli_exit_status_for_a_stateful_deletion(tmp_path):
    result = _ops(
        "--base-dir",
        str(corpus.assembly("default")),
        "--head-dir",
        str(corpus.assembly("monitoring_off")),
        "--out",
        str(tmp_path / "review"),
    )
    assert result.returncode == rv.EXIT_STATEFUL, result.stderr
    assert "AWS::SecretsManager::Secret" in result.stdout
    assert json.loads((tmp_path / "review" / "status.json").read_text())["exit_code"] == rv.EXIT_STATEFUL


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "no-such-ref-17"], "BASE=no-such-ref-17: not a commit"),
        (["--base", "HEAD", "--config", "config/nope.yaml"], "config/nope.yaml: config file not found"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, args, message):
    result = _ops(*args, "--out", str(tmp_path / "review"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_invalid_config_is_one_error_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (REPO / "config" / "default.yaml").read_text().replace("nat_gateways: 1", "nat_gateways: lots")
    )
    result = _ops("--base", "HEAD", "--config", str(bad), "--out", str(tmp_path / "review"))
    assert result.returncode == 1
    assert (
        result.stderr.startswith("error: ")
        and "nat_gateways" in result.stderr
        and "Traceback" not in result.stderr
    )


# --------------------------------------------------------------------------- PR jobs


WORKFLOW = REPO / ".github" / "workflows" / "review.yml"
BUILDSPEC = REPO / "ops" / "review-buildspec.yml"


def test_workflow_passes_actionlint():
    actionlint = Path(sys.executable).parent / "actionlint"
    assert actionlint.exists(), "actionlint missing: make setup installs requirements-dev.txt"
    result = subprocess.run(
        [str(actionlint), "-no-color", str(WORKFLOW)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_make_review_posts_the_summary_and_gates_on_labels():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers["pull_request"]["types"]) >= {"opened", "synchronize", "labeled", "unlabeled"}
    steps = workflow["jobs"]["review"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "make review BASE=" in runs
    assert "-m ops.review gate dist/review/status.json" in runs
    script = next(step["with"]["script"] for step in steps if "github-script" in step.get("uses", ""))
    assert "dist/review/summary.md" in script and "updateComment" in script
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_buildspec_shape():
    spec = yaml.safe_load(BUILDSPEC.read_text())
    assert str(spec["version"]) == "0.2"
    assert spec["env"]["shell"] == "bash"
    assert spec["env"]["exported-variables"] == ["REVIEW_EXIT_CODE"]
    assert list(spec["phases"]) == ["install", "pre_build", "build", "post_build"]
    for phase in spec["phases"].values():
        assert all(isinstance(c, str) for c in phase["commands"])
    assert spec["artifacts"]["base-directory"] == "dist/review"


_STUB = """#!/bin/bash
line="$(basename "$0")"
for arg in "$@"; do line+=" $(printf '%q' "$arg")"; done
printf '%s\\n' "$line" >> "$CALLS"
case "$(basename "$0") $1" in
  "git rev-parse") [ "$2" = --is-shallow-repository ] && echo false ;;
  "git merge-base") echo 0123456789abcdef ;;
  "make review")
    mkdir -p dist/review
    echo "# summary" > dist/review/summary.md
    printf '%s' "$STATUS" > dist/review/status.json ;;
  "curl -sS") case "$*" in *labels*) echo "$LABELS_JSON" ;; esac ;;
esac
exit 0
"""


def _run_buildspec(tmp_path: Path, status: dict, **env_overrides: str) -> tuple[int, list[str], str]:
    """Run the buildspec like CodeBuild 0.2 (one bash shell, phases in order) with stand-ins."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "make", "curl"):
        (bin_dir / tool).write_text(_STUB)
        (bin_dir / tool).chmod(0o755)
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "ops").symlink_to(REPO / "ops")
    (tmp_path / "config").symlink_to(REPO / "config")
    calls = tmp_path / "calls"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(calls),
        "STATUS": json.dumps(status),
        "CONFIG": "config/default.yaml",
        "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main",
        "CODEBUILD_WEBHOOK_TRIGGER": "pr/17",
        "CODEBUILD_SOURCE_REPO_URL": "https://github.com/my-org/dynamo-eks.git",
        "LABELS_JSON": "[]",
    }
    env.update(env_overrides)
    spec = yaml.safe_load(BUILDSPEC.read_text())
    lines = []
    for phase, body in spec["phases"].items():
        lines.append(f"echo PHASE={phase}")
        for command in body["commands"]:
            lines.append(f"eval {shlex.quote(command)} || exit 1")
    lines.append('echo "REVIEW_EXIT_CODE=$REVIEW_EXIT_CODE"')
    result = subprocess.run(
        ["bash", "-c", "\n".join(lines)], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    recorded = calls.read_text().splitlines() if calls.exists() else []
    return result.returncode, recorded, result.stdout + result.stderr


def test_buildspec_reviews_against_the_merge_base_and_passes_when_safe(tmp_path):
    rc, calls, output = _run_buildspec(tmp_path, {"exit_code": 0, "stateful": [], "broadening": []})
    assert rc == 0, output
    assert "make review BASE=0123456789abcdef CONFIG=config/default.yaml" in calls
    assert "git merge-base HEAD origin/main" in calls
    assert "REVIEW_EXIT_CODE=0" in output
    assert not [c for c in calls if c.startswith("curl")]  # no token: no comment


def test_buildspec_fails_on_replacement_unless_labelled(tmp_path):
    status = {"exit_code": 3, "stateful": [{"type": "AWS::EKS::Cluster"}], "broadening": []}
    unlabelled, labelled = tmp_path / "unlabelled", tmp_path / "labelled"
    unlabelled.mkdir()
    labelled.mkdir()
    rc, calls, output = _run_buildspec(unlabelled, status)
    assert rc != 0 and rv.ACCEPT_REPLACEMENT_LABEL in output
    rc, calls, output = _run_buildspec(
        labelled,
        status,
        GITHUB_TOKEN="t0ken",
        LABELS_JSON=json.dumps([{"name": rv.ACCEPT_REPLACEMENT_LABEL}]),
    )
    assert rc == 0, output
    posted = [c for c in calls if c.startswith("curl") and "-X POST" in c]
    assert (
        len(posted) == 1 and "https://api.github.com/repos/my-org/dynamo-eks/issues/17/comments" in posted[0]
    )
    assert json.loads((labelled / "dist" / "review" / "comment.json").read_text()) == {"body": "# summary\n"}
