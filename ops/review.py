"""`ops review`: what a change does to each environment, offline and without AWS credentials.

Two layers:

* the core, `compare(base_dir, head_dir, out)`, compares two synthesized cloud assemblies
  (directories written by `cdk synth -o DIR`): per stack the CDK CLI's own
  `cdk diff --app HEAD --exclusively --template BASE.template.json STACK` (replacement and IAM
  judgements are the CLI's, from CloudFormation's resource specifications; nothing here diffs
  templates by hand), per environment a unified diff of the Kubernetes manifests and Helm
  values the templates embed, rendered as YAML one file per object, and `summary.md`;
* `run()`, a thin layer that synthesizes a git ref in a temporary worktree (with this
  checkout's .venv and node_modules) and the working tree, then calls the core.

Exit status (also written to dist/review/status.json, because `make` turns every failing
recipe into status 2):
  0  nothing dangerous (or no changes at all)
  1  error: bad ref, bad config, synth or cdk diff failed
  3  a stateful resource would be replaced, deleted or orphaned
  4  IAM or security-group permissions broaden in an existing stack (3 wins when both apply)
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CDK = REPO / "node_modules" / ".bin" / "cdk"
CDK_FLAGS = ("--no-notices", "--no-version-reporting", "--no-color")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_STATEFUL = 3
EXIT_BROADENING = 4

# Resource types whose replacement or deletion loses data, a running cluster or an identity
# other things point at. The impact itself is always cdk diff's.
STATEFUL_TYPES = {
    "AWS::EKS::Cluster": "EKS cluster",
    "AWS::EKS::Nodegroup": "EKS node group",
    "AWS::EFS::FileSystem": "EFS file system (model cache)",
    "AWS::EFS::AccessPoint": "EFS access point",
    "AWS::ECR::Repository": "ECR repository (images)",
    "AWS::KMS::Key": "KMS key (encrypted data becomes unreadable)",
    "AWS::EC2::VPC": "VPC",
    "AWS::EC2::Subnet": "subnet",
    "AWS::Logs::LogGroup": "log group (logs)",
    "AWS::S3::Bucket": "S3 bucket",
    "AWS::SecretsManager::Secret": "Secrets Manager secret",
    "AWS::DynamoDB::Table": "DynamoDB table",
    "AWS::RDS::DBInstance": "RDS instance",
    "AWS::RDS::DBCluster": "RDS cluster",
}
# A Kubernetes manifest resource that is replaced or deleted deletes its objects; these kinds
# hold data (or, for a Namespace, everything in it).
STATEFUL_KINDS = {"PersistentVolumeClaim", "PersistentVolume", "Namespace"}
# cdk diff's resource impacts that destroy the old physical resource (its `--fail-on
# destructive` set).
DESTRUCTIVE = ("replace", "may be replaced", "destroy", "orphan")

MANIFEST_TYPE = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_TYPE = "Custom::AWSCDK-EKS-HelmChart"
PATCH_TYPE = "Custom::AWSCDK-EKS-KubernetesPatch"

MARKER = "<!-- dynamo-eks-review -->"
SUMMARY_LIMIT = 60000


class ReviewError(Exception):
    """A problem printed as one `error:` line; exit status 1."""


# --------------------------------------------------------------------------- assemblies


@dataclass(frozen=True)
class StackRef:
    key: str  # hierarchical id: "dev-network" or "dynamo-pipeline/dev/dev-network"
    environment: str
    stack_name: str
    template: Path


def assembly_stacks(root: Path) -> dict[str, StackRef]:
    """Every stack of a cloud assembly, including those of nested (Stage) assemblies."""
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise ReviewError(
            f"{root}: not a cloud assembly (no manifest.json); synthesize it with cdk synth -o DIR"
        )
    stacks: dict[str, StackRef] = {}
    _collect(root, json.loads(manifest.read_text()), None, stacks)
    return stacks


def _collect(directory: Path, manifest: dict, environment: str | None, into: dict[str, StackRef]) -> None:
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        props = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack":
            key = artifact.get("displayName") or artifact_id
            name = props.get("stackName") or artifact_id
            env = environment or (name.rsplit("-", 1)[0] if "-" in name else name)
            into[key] = StackRef(key, env, name, directory / props["templateFile"])
        elif artifact.get("type") == "cdk:cloud-assembly":
            nested = directory / props["directoryName"]
            display = props.get("displayName") or artifact_id
            _collect(
                nested, json.loads((nested / "manifest.json").read_text()), display.rsplit("/", 1)[-1], into
            )


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- cdk diff


@dataclass
class ResourceChange:
    op: str  # "+" added, "~" changed, "-" removed
    type: str
    path: str
    logical_id: str
    impact: str  # "" | replace | may be replaced | destroy | orphan | import

    @property
    def destructive(self) -> bool:
        return self.impact in DESTRUCTIVE


@dataclass
class StackReview:
    key: str
    environment: str
    stack_name: str
    status: str  # added | removed | changed | unchanged
    changes: list[ResourceChange] = field(default_factory=list)
    broadening: bool = False
    security_text: str = ""  # cdk diff's IAM / security group tables
    diff_file: str = ""
    stateful_kinds: dict[str, list[str]] = field(default_factory=dict)  # logical id -> kinds


_RESOURCE = re.compile(r"^\[([+~-])\] (\S+) (.*?)(?: (replace|may be replaced|destroy|orphan|import))?$")
_SECTION = re.compile(r"^[A-Z][A-Za-z ]+$")
_DIFF_DONE = "Number of stacks with differences"


def parse_cdk_diff(text: str) -> tuple[list[ResourceChange], str]:
    """Resource lines of the Resources section and the IAM / security-group tables."""
    changes: list[ResourceChange] = []
    security: list[str] = []
    section = ""
    for line in text.splitlines():
        if _SECTION.match(line):
            section = line
            if section in ("IAM Statement Changes", "IAM Policy Changes", "Security Group Changes"):
                security.append(line)
            continue
        if section in ("IAM Statement Changes", "IAM Policy Changes", "Security Group Changes"):
            if line.strip():
                security.append(line)
            continue
        if section != "Resources":
            continue
        match = _RESOURCE.match(line.rstrip())
        if not match:
            continue
        op, rtype, rest, impact = match.groups()
        path, _, logical_id = rest.rpartition(" ")
        changes.append(ResourceChange(op, rtype, path or logical_id, logical_id, impact or ""))
    return changes, "\n".join(security)


def cdk_env() -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join([bin_dir, str(Path(sys.executable).parent), env.get("PATH", "")])
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    env.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    # `--template` diffs never call AWS; keep the SDK from probing instance metadata anyway.
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    return env


def run_cdk_diff(head_root: Path, stack: StackRef, base_template: Path) -> tuple[str, bool]:
    """cdk diff of one head stack against a base template file: (text, broadens security)."""
    cmd = [
        str(CDK),
        "diff",
        *CDK_FLAGS,
        "--app",
        str(head_root),
        "--exclusively",
        "--template",
        str(base_template),
        "--fail-on",
        "broadening",
        stack.key,
    ]
    result = subprocess.run(cmd, cwd=REPO, env=cdk_env(), capture_output=True, text=True)
    text = result.stdout + result.stderr
    if _DIFF_DONE not in text:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "no output")
        raise ReviewError(f"cdk diff {stack.key} failed (exit {result.returncode}): {last.strip()}")
    if result.returncode not in (0, 1):
        raise ReviewError(f"cdk diff {stack.key} failed with exit {result.returncode}")
    return text, result.returncode == 1


# --------------------------------------------------------------------------- manifests


def _intrinsic(value) -> str:
    """A template value as text, CloudFormation tokens shown as ${...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return json.dumps(value)
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::Join":
            sep, parts = arg
            return _intrinsic(sep).join(_intrinsic(part) for part in parts)
        if key == "Ref":
            return "${" + str(arg) + "}"
        if key == "Fn::GetAtt":
            return "${" + (".".join(map(str, arg)) if isinstance(arg, list) else str(arg)) + "}"
        return "${" + key + "}"
    return "${?}"


def _json_or_text(value):
    text = _intrinsic(value)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _readable(value):
    """Long JSON strings (Grafana dashboards, engine configs) pretty-printed for review."""
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    if isinstance(value, str) and len(value) > 200 and value.lstrip()[:1] in "{[":
        try:
            return json.dumps(json.loads(value), indent=2, sort_keys=False) + "\n"
        except ValueError:
            return value
    return value


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj) -> str:
    return yaml.dump(_readable(obj), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part) or "_"


def embedded_objects(template: dict) -> dict[str, tuple[str, dict]]:
    """Kubernetes objects and Helm releases a template embeds: file name -> (logical id, object).

    Names are <Kind>/<namespace or _cluster>/<name>.yaml; Helm releases are
    HelmRelease/<namespace>/<release>.yaml with the chart, version, repository and values.
    """
    found: dict[str, tuple[str, dict]] = {}

    def add(name: str, logical_id: str, obj: dict) -> None:
        if name in found:
            name = name[: -len(".yaml")] + f".{logical_id}.yaml"
        found[name] = (logical_id, obj)

    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        rtype = resource.get("Type")
        if rtype == MANIFEST_TYPE and "Manifest" in props:
            objects = _json_or_text(props["Manifest"])
            if not isinstance(objects, list):
                objects = [objects]
            for obj in objects:
                if not isinstance(obj, dict):
                    add(f"_unparsed/{logical_id}.yaml", logical_id, {"manifest": obj})
                    continue
                meta = obj.get("metadata", {})
                add(
                    f"{_safe(str(obj.get('kind', 'Object')))}/{_safe(meta.get('namespace', '_cluster'))}/"
                    f"{_safe(str(meta.get('name', logical_id)))}.yaml",
                    logical_id,
                    obj,
                )
        elif rtype == HELM_TYPE:
            release = _intrinsic(props.get("Release", logical_id))
            namespace = _intrinsic(props.get("Namespace", "default"))
            obj = {
                key[0].lower() + key[1:]: _intrinsic(props[key])
                for key in (
                    "Release",
                    "Chart",
                    "Version",
                    "Repository",
                    "Namespace",
                    "CreateNamespace",
                    "Wait",
                    "Timeout",
                )
                if key in props
            }
            obj["values"] = _json_or_text(props["Values"]) if "Values" in props else {}
            add(f"HelmRelease/{_safe(namespace)}/{_safe(release)}.yaml", logical_id, obj)
        elif rtype == PATCH_TYPE:
            name = _intrinsic(props.get("ResourceName", logical_id))
            obj = {
                "resource": name,
                "namespace": _intrinsic(props.get("ResourceNamespace", "default")),
                "apply": _json_or_text(props.get("ApplyPatchJson", "{}")),
                "restore": _json_or_text(props.get("RestorePatchJson", "{}")),
            }
            add(f"Patch/{_safe(str(obj['namespace']))}/{_safe(name)}.yaml", logical_id, obj)
    return found


@dataclass
class ManifestReview:
    environment: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    diff_file: str = ""


def diff_manifests(environment: str, base: dict[str, str], head: dict[str, str], out: Path) -> ManifestReview:
    """Write base/ and head/ trees (one YAML file per object) and one unified diff."""
    review = ManifestReview(environment)
    root = out / environment / "manifests"
    for side, files in (("base", base), ("head", head)):
        for name, text in files.items():
            path = root / side / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    chunks: list[str] = []
    for name in sorted(set(base) | set(head)):
        before, after = base.get(name), head.get(name)
        if before == after:
            continue
        if before is None:
            review.added.append(name)
        elif after is None:
            review.removed.append(name)
        else:
            review.changed.append(name)
        chunks.extend(
            difflib.unified_diff(
                (before or "").splitlines(keepends=True),
                (after or "").splitlines(keepends=True),
                fromfile=f"base/{name}" if before is not None else "/dev/null",
                tofile=f"head/{name}" if after is not None else "/dev/null",
            )
        )
    if chunks:
        diff_path = out / environment / "manifests.diff"
        diff_path.parent.mkdir(parents=True, exist_ok=True)
        diff_path.write_text(
            "".join(line if line.endswith("\n") else line + "\n" for line in chunks), encoding="utf-8"
        )
        review.diff_file = str(diff_path.relative_to(out))
    return review


# --------------------------------------------------------------------------- the core


@dataclass
class Review:
    base_label: str
    head_label: str
    config: str
    environments: list[str]
    stacks: list[StackReview]
    manifests: list[ManifestReview]
    notes: list[str] = field(default_factory=list)

    @property
    def stateful(self) -> list[tuple[StackReview, ResourceChange, str]]:
        """(stack, change, why) for every destroyed stateful resource."""
        found = []
        for stack in self.stacks:
            for change in stack.changes:
                if not change.destructive:
                    continue
                if change.type in STATEFUL_TYPES:
                    found.append((stack, change, STATEFUL_TYPES[change.type]))
                elif change.logical_id in stack.stateful_kinds:
                    kinds = ", ".join(stack.stateful_kinds[change.logical_id])
                    found.append((stack, change, f"Kubernetes objects that hold data ({kinds})"))
        return found

    @property
    def broadening(self) -> list[StackReview]:
        return [s for s in self.stacks if s.broadening]

    @property
    def changed(self) -> bool:
        return any(s.status != "unchanged" for s in self.stacks) or any(
            m.added or m.changed or m.removed for m in self.manifests
        )

    @property
    def exit_code(self) -> int:
        if self.stateful:
            return EXIT_STATEFUL
        if self.broadening:
            return EXIT_BROADENING
        return EXIT_OK


def compare(
    base_dir: Path | None,
    head_dir: Path,
    out: Path,
    *,
    base_label: str = "base",
    head_label: str = "head",
    config: str = "",
    jobs: int = 4,
) -> Review:
    """Compare two synthesized assemblies (base_dir None: nothing deployed yet) into `out`."""
    base = assembly_stacks(base_dir) if base_dir is not None else {}
    head = assembly_stacks(head_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    empty = out / ".empty.template.json"
    empty.write_text("{}\n")

    reviews: dict[str, StackReview] = {}
    to_diff: list[tuple[StackRef, Path]] = []
    for key in sorted(set(base) | set(head)):
        ref = head.get(key) or base[key]
        review = StackReview(key, ref.environment, ref.stack_name, "unchanged")
        reviews[key] = review
        if key not in head:
            review.status = "removed"
            template = _load(base[key].template)
            for logical_id, resource in template.get("Resources", {}).items():
                retained = resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
                review.changes.append(
                    ResourceChange(
                        "-",
                        resource.get("Type", "?"),
                        _construct_path(resource, logical_id),
                        logical_id,
                        "orphan" if retained else "destroy",
                    )
                )
            review.stateful_kinds = _stateful_kinds(template)
            continue
        if key not in base:
            review.status = "added"
            to_diff.append((head[key], empty))
            continue
        if _load(base[key].template) == _load(head[key].template):
            continue
        review.status = "changed"
        review.stateful_kinds = _stateful_kinds(_load(base[key].template))
        to_diff.append((head[key], base[key].template))

    def diff_one(item: tuple[StackRef, Path]) -> tuple[str, str, bool]:
        ref, template = item
        text, broad = run_cdk_diff(head_dir, ref, template)
        return ref.key, text, broad

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(diff_one, to_diff))
    for key, text, broad in results:
        review = reviews[key]
        review.changes, review.security_text = parse_cdk_diff(text)
        if key in base:  # cdk diff names a removed resource by logical id only
            resources = _load(base[key].template).get("Resources", {})
            for change in review.changes:
                if change.path == change.logical_id and change.logical_id in resources:
                    change.path = _construct_path(resources[change.logical_id], change.logical_id)
        # A new stack's IAM is all new: listed, but not "broadening" an existing deployment.
        review.broadening = broad and review.status == "changed"
        path = out / review.environment / "stacks" / f"{_safe(review.stack_name)}.diff"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        review.diff_file = str(path.relative_to(out))
    for review in reviews.values():
        if review.status == "removed":
            path = out / review.environment / "stacks" / f"{_safe(review.stack_name)}.diff"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                f"Stack {review.key} is no longer synthesized: every resource is deleted\n"
                + "".join(f"[-] {c.type} {c.logical_id} {c.impact}\n" for c in review.changes),
                encoding="utf-8",
            )
            review.diff_file = str(path.relative_to(out))
    empty.unlink()

    environments = sorted({ref.environment for ref in [*base.values(), *head.values()]})
    manifests = []
    for environment in environments:
        manifests.append(
            diff_manifests(
                environment,
                _rendered([r for r in base.values() if r.environment == environment]),
                _rendered([r for r in head.values() if r.environment == environment]),
                out,
            )
        )
    return Review(
        base_label=base_label,
        head_label=head_label,
        config=config,
        environments=environments,
        stacks=list(reviews.values()),
        manifests=manifests,
    )


def _construct_path(resource: dict, logical_id: str) -> str:
    """The construct path cdk diff would show (aws:cdk:path without stack and /Resource)."""
    path = resource.get("Metadata", {}).get("aws:cdk:path")
    if not path:
        return logical_id
    path = path.split("/", 1)[-1]
    return path.removesuffix("/Resource") or logical_id


def _stateful_kinds(template: dict) -> dict[str, list[str]]:
    kinds: dict[str, set[str]] = {}
    for _, (logical_id, obj) in embedded_objects(template).items():
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind in STATEFUL_KINDS:
            kinds.setdefault(logical_id, set()).add(kind)
    return {k: sorted(v) for k, v in kinds.items()}


def _rendered(refs: list[StackRef]) -> dict[str, str]:
    files: dict[str, str] = {}
    for ref in sorted(refs, key=lambda r: r.key):
        for name, (logical_id, obj) in embedded_objects(_load(ref.template)).items():
            header = f"# {ref.stack_name} {logical_id}\n"
            if name in files:
                name = name[: -len(".yaml")] + f".{_safe(ref.stack_name)}.yaml"
            files[name] = header + to_yaml(obj)
    return files


# --------------------------------------------------------------------------- summary


def write_outputs(review: Review, out: Path) -> None:
    summary = summary_markdown(review)
    if len(summary) > SUMMARY_LIMIT:  # a GitHub comment holds 65536 characters
        summary = (
            summary[:SUMMARY_LIMIT].rsplit("\n", 1)[0]
            + "\n\n... summary truncated; read dist/review/ (the job's artifact).\n"
        )
    (out / "summary.md").write_text(summary, encoding="utf-8")
    status = {
        "exit_code": review.exit_code,
        "changes": review.changed,
        "stateful": [
            {
                "environment": s.environment,
                "stack": s.stack_name,
                "type": c.type,
                "path": c.path,
                "logical_id": c.logical_id,
                "impact": c.impact,
            }
            for s, c, _ in review.stateful
        ],
        "broadening": [s.stack_name for s in review.broadening],
        "stacks": [
            {
                **{
                    k: v
                    for k, v in asdict(s).items()
                    if k in ("key", "environment", "stack_name", "status", "diff_file")
                },
                "added": sum(c.op == "+" for c in s.changes),
                "changed": sum(c.op == "~" for c in s.changes),
                "removed": sum(c.op == "-" for c in s.changes),
            }
            for s in review.stacks
        ],
        "base": review.base_label,
        "head": review.head_label,
        "config": review.config,
    }
    (out / "status.json").write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary_markdown(review: Review, max_security_lines: int = 40) -> str:
    lines = [MARKER, f"## dynamo-eks review: `{review.base_label}` → `{review.head_label}`", ""]
    if review.config:
        lines.append(f"Config `{review.config}`, environments: {', '.join(review.environments) or 'none'}.")
        lines.append("")
    lines.extend(f"> {note}" for note in review.notes)
    if review.notes:
        lines.append("")
    if not review.changed:
        lines.append("**No changes**: every stack of every environment synthesizes to the same template.")
        lines.append("")
        lines.append(f"Exit status {review.exit_code}.")
        return "\n".join(lines) + "\n"

    stateful = review.stateful
    if stateful:
        lines += [
            f"### ⛔ Stateful resources replaced or deleted (exit {EXIT_STATEFUL})",
            "",
            "Deploying this change destroys these resources (or replaces them with new, empty ones). "
            f"If that is intended, add the `{ACCEPT_REPLACEMENT_LABEL}` label.",
            "",
            "| environment | stack | resource | type | what it holds | impact |",
            "|---|---|---|---|---|---|",
        ]
        for stack, change, why in stateful:
            lines.append(
                f"| {stack.environment} | {stack.stack_name} | `{_cell(change.path)}` | {change.type} | {why} | **{change.impact}** |"
            )
        lines.append("")
    broad = review.broadening
    if broad:
        lines += [
            f"### ⚠️ IAM / security-group broadening (exit {EXIT_BROADENING})",
            "",
            "`cdk diff` judges these stacks to grant more than before (added statements or rules marked `+`). "
            f"If intended, add the `{ACCEPT_BROADENING_LABEL}` label.",
            "",
        ]
        for stack in broad:
            text = stack.security_text.splitlines()
            shown = text[:max_security_lines]
            lines += [
                f"**{stack.environment} / {stack.stack_name}** ({stack.diff_file})",
                "",
                "```text",
                *shown,
            ]
            if len(text) > len(shown):
                lines.append(f"... {len(text) - len(shown)} more lines in {stack.diff_file}")
            lines += ["```", ""]

    changed = [s for s in review.stacks if s.status != "unchanged"]
    lines += ["### Stacks", ""]
    if changed:
        lines += [
            "| environment | stack | status | added | changed | removed | replaced |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in changed:
            replaced = sum(c.impact in ("replace", "may be replaced") for c in s.changes)
            lines.append(
                f"| {s.environment} | {s.stack_name} | {s.status} | {sum(c.op == '+' for c in s.changes)} | "
                f"{sum(c.op == '~' for c in s.changes)} | {sum(c.op == '-' for c in s.changes)} | {replaced} |"
            )
        lines.append("")
    else:
        lines += ["No template changes.", ""]
    unchanged = [s.stack_name for s in review.stacks if s.status == "unchanged"]
    if unchanged:
        lines += [f"Unchanged: {', '.join(unchanged)}.", ""]

    others = [
        (s, c)
        for s in review.stacks
        for c in s.changes
        if c.destructive and (s, c) not in [(x, y) for x, y, _ in stateful]
    ]
    if others:
        lines += ["### Other replacements and deletions (no data held)", ""]
        for s, c in others[:40]:
            lines.append(f"- {s.environment} / {s.stack_name}: `{c.path}` ({c.type}) **{c.impact}**")
        if len(others) > 40:
            lines.append(f"- ... {len(others) - 40} more in the stack diffs")
        lines.append("")
    new_stacks = [s for s in changed if s.status == "added"]
    if new_stacks:
        lines += [
            "New stacks (all of their IAM is new; read it in their diff): "
            + ", ".join(f"{s.stack_name} ({s.diff_file})" for s in new_stacks),
            "",
        ]

    lines += ["### Kubernetes objects and Helm releases", ""]
    any_manifest = False
    for m in review.manifests:
        if not (m.added or m.changed or m.removed):
            continue
        any_manifest = True
        lines.append(f"**{m.environment}** ({m.diff_file}):")
        for label, names in (("added", m.added), ("changed", m.changed), ("removed", m.removed)):
            if names:
                listed = ", ".join(f"`{n[:-5]}`" for n in names[:15])
                more = f" and {len(names) - 15} more" if len(names) > 15 else ""
                lines.append(f"- {label}: {listed}{more}")
        lines.append("")
    if not any_manifest:
        lines += ["No embedded manifest or Helm values changed.", ""]
    lines.append(
        f"Exit status {review.exit_code}. Full output: `dist/review/` (per stack `<env>/stacks/*.diff`, "
        "per environment `<env>/manifests.diff` and `<env>/manifests/{base,head}/`)."
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- git + synth layer


def _git(*args: str, cwd: Path = REPO) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["git failed"])[-1]
        raise ReviewError(f"git {' '.join(args)}: {message}")
    return result.stdout.strip()


def resolve_ref(ref: str) -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise ReviewError(
            f"BASE={ref}: not a commit in this repository; use a branch, tag or commit (e.g. BASE=main)"
        )
    return result.stdout.strip()


def default_base() -> str:
    for candidate in ("main", "origin/main"):
        check = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if check.returncode == 0:
            return _git("merge-base", "HEAD", candidate)
    raise ReviewError("no 'main' or 'origin/main' branch to find the merge base with; pass BASE=<git ref>")


def synth(checkout: Path, config: str, outdir: Path, label: str) -> subprocess.Popen:
    cmd = [
        str(CDK),
        "synth",
        *CDK_FLAGS,
        "--quiet",
        "-c",
        f"config={config}",
        "-c",
        "nag=false",
        "-o",
        str(outdir),
    ]
    return subprocess.Popen(
        cmd, cwd=checkout, env=cdk_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait(process: subprocess.Popen, label: str) -> None:
    output, _ = process.communicate()
    if process.returncode != 0:
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        last = (
            errors[0]
            if errors
            else next((l for l in reversed(output.splitlines()) if l.strip()), "no output")
        )
        raise ReviewError(f"{label}: cdk synth failed: {last.removeprefix('error: ').strip()}")


class Worktree:
    """A detached git worktree of one commit, with this checkout's node_modules linked in."""

    def __init__(self, commit: str, parent: Path) -> None:
        self.commit = commit
        self.path = parent / f"worktree-{commit[:12]}"

    def __enter__(self) -> Path:
        _git("worktree", "add", "--quiet", "--detach", str(self.path), self.commit)
        (self.path / "node_modules").symlink_to(REPO / "node_modules")
        return self.path

    def __exit__(self, *exc) -> None:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(self.path)], cwd=REPO, capture_output=True
        )
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)


def _config_in(checkout: Path, config: str) -> str | None:
    """The config path to synthesize in a checkout: repository-relative paths follow the checkout."""
    path = Path(config)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(REPO)
        except ValueError:
            return str(path)
    return str(path) if (checkout / path).is_file() else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="config/default.yaml", help="config to synthesize on both sides")
    parser.add_argument(
        "--base", default=None, help="git ref to compare with (default: the merge base with main)"
    )
    parser.add_argument(
        "--head",
        default=None,
        help="git ref to review (default: the working tree, uncommitted changes included)",
    )
    parser.add_argument("--out", default="dist/review", help="output folder (replaced)")
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=None,
        help="compare an already synthesized base assembly instead of --base",
    )
    parser.add_argument(
        "--head-dir",
        type=Path,
        default=None,
        help="compare an already synthesized head assembly instead of --head",
    )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        review = _run(args, out)
    except ReviewError as err:
        print(f"error: {err}", file=sys.stderr)
        out.mkdir(parents=True, exist_ok=True)
        (out / "status.json").write_text(json.dumps({"exit_code": EXIT_ERROR, "error": str(err)}) + "\n")
        return EXIT_ERROR
    write_outputs(review, out)
    print((out / "summary.md").read_text(encoding="utf-8"), end="")
    return review.exit_code


def _run(args: argparse.Namespace, out: Path) -> Review:
    from plan import load_config

    if not CDK.exists():
        raise ReviewError(f"{CDK} not found; run `make setup` first")
    head_config = _config_in(REPO, args.config)
    if args.head_dir is None and args.head is None:
        if head_config is None:
            raise ReviewError(f"{args.config}: config file not found; pass an existing file with CONFIG=path")
        load_config(head_config)  # a bad config is one error line before anything is synthesized
    base_commit = None
    if args.base_dir is None:
        base_commit = resolve_ref(args.base) if args.base else default_base()
    head_commit = resolve_ref(args.head) if args.head and args.head_dir is None else None
    base_label = args.base or (f"merge-base {base_commit[:12]}" if base_commit else str(args.base_dir))
    head_label = args.head or ("working tree" if args.head_dir is None else str(args.head_dir))
    if base_commit:
        base_label = (
            f"{base_label} ({base_commit[:12]})"
            if args.base and base_commit[:12] not in base_label
            else base_label
        )

    with tempfile.TemporaryDirectory(prefix="dynamo-review-") as tmp:
        tmpdir = Path(tmp)
        notes: list[str] = []
        processes: list[tuple[subprocess.Popen, str]] = []
        base_dir, head_dir = args.base_dir, args.head_dir
        worktrees: list[Worktree] = []
        try:
            for commit, side in ((base_commit, "base"), (head_commit, "head")):
                if commit is None:
                    continue
                tree = Worktree(commit, tmpdir / side)
                checkout = tree.__enter__()
                worktrees.append(tree)
                config = _config_in(checkout, args.config)
                outdir = tmpdir / f"{side}.out"
                if config is None:
                    if side == "head":
                        raise ReviewError(
                            f"{args.config}: not in {args.head}; pass a config that exists there"
                        )
                    notes.append(f"`{args.config}` does not exist in the base: everything is new.")
                    continue
                processes.append((synth(checkout, config, outdir, side), f"{side} {commit[:12]}"))
                if side == "base":
                    base_dir = outdir
                else:
                    head_dir = outdir
            if head_dir is None:
                # Neither --head nor --head-dir: the working tree, whose config was checked above.
                if head_config is None:
                    raise ReviewError(f"{args.config}: config file not found")
                head_dir = tmpdir / "head.out"
                processes.append((synth(REPO, head_config, head_dir, "head"), "working tree"))
            for process, label in processes:
                _wait(process, label)
        finally:
            for process, _ in processes:
                if process.poll() is None:
                    process.kill()
            for tree in worktrees:
                tree.__exit__()
        review = compare(
            base_dir, head_dir, out, base_label=base_label, head_label=head_label, config=str(args.config)
        )
        review.notes = notes
    return review


# --------------------------------------------------------------------------- PR gate

ACCEPT_REPLACEMENT_LABEL = "review/accept-replacement"
ACCEPT_BROADENING_LABEL = "review/accept-broadening"


def gate(
    status: dict, *, accept_replacement: bool = False, accept_broadening: bool = False
) -> tuple[int, str]:
    """Whether a PR check passes, given status.json and the labels a reviewer set."""
    code = status.get("exit_code", EXIT_ERROR)
    if code not in (EXIT_OK, EXIT_STATEFUL, EXIT_BROADENING):
        return 1, f"review failed: {status.get('error', 'see the job log')}"
    problems = []
    if status.get("stateful") and not accept_replacement:
        problems.append(
            f"{len(status['stateful'])} stateful resource(s) replaced or deleted; "
            f"add the '{ACCEPT_REPLACEMENT_LABEL}' label if that is intended"
        )
    if status.get("broadening") and not accept_broadening:
        problems.append(
            f"IAM/security broadening in {', '.join(status['broadening'])}; "
            f"add the '{ACCEPT_BROADENING_LABEL}' label if that is intended"
        )
    if problems:
        return 1, "; ".join(problems)
    accepted = [
        name
        for name, flag in (("replacement", accept_replacement), ("broadening", accept_broadening))
        if flag
    ]
    return 0, "review passed" + (f" (accepted by label: {', '.join(accepted)})" if code and accepted else "")


def _gate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.review gate", description=gate.__doc__)
    parser.add_argument("status", type=Path, nargs="?", default=Path("dist/review/status.json"))
    parser.add_argument("--labels", default="", help="the PR's labels, comma or newline separated")
    args = parser.parse_args(argv)
    try:
        status = json.loads(args.status.read_text())
    except (OSError, ValueError):
        status = {
            "exit_code": EXIT_ERROR,
            "error": f"{args.status} missing or unreadable (make review did not finish)",
        }
    labels = {label.strip() for label in re.split(r"[,\n]", args.labels) if label.strip()}
    code, message = gate(
        status,
        accept_replacement=ACCEPT_REPLACEMENT_LABEL in labels,
        accept_broadening=ACCEPT_BROADENING_LABEL in labels,
    )
    print(message if code == 0 else f"error: {message}", file=sys.stdout if code == 0 else sys.stderr)
    return code


if __name__ == "__main__":
    if sys.argv[1:2] != ["gate"]:
        print("usage: python -m ops.review gate [dist/review/status.json] [--labels a,b]", file=sys.stderr)
        sys.exit(2)
    sys.exit(_gate_main(sys.argv[2:]))
