"""The IAM policies the project writes, out of synthesized templates, with CloudFormation
intrinsics resolved into placeholders of the right shape, for an IAM linter (parliament).

Collected: `AWS::IAM::Policy` and `AWS::IAM::ManagedPolicy` documents and roles' inline
`Policies`. Left out: trust policies, resource policies, and the roles CDK generates for its
own machinery (custom-resource providers, the kubectl provider, the provider framework),
matched by logical id in CDK_INTERNAL.

Placeholders: a `Ref`/`Fn::GetAtt` is replaced by what CloudFormation would return for that
resource type (a name, an id or an ARN: RETURNS below), pseudo parameters by fixed values,
so `Fn::Join`/`Fn::Sub` produce ARNs of the real shape. An unknown type or attribute is an
error, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-west-2"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "dev-stack",
    "AWS::NoValue": None,
}
# Logical-id fragments of the roles and policies CDK writes for its own machinery.
CDK_INTERNAL = (
    "CustomResourceProvider",  # CDK's singleton providers (e.g. the VPC's default-SG restriction)
    "KubectlProvider",  # aws-eks-v2's kubectl handler
    "ProviderframeworkonEvent",  # custom_resources.Provider's framework function
    "AWSCDKCfnUtilsProvider",
    "LogRetention",
)
# CDK Pipelines (stacks/pipeline_stack.py: pipelines.CodePipeline with id "Pipeline") generates
# the pipeline's, its actions' and its CodeBuild projects' roles and their grants.
CDK_PIPELINES_PREFIX = "Pipeline"

_ARN = {
    "AWS::IAM::Role": "arn:aws:iam::{a}:role/{n}",
    "AWS::IAM::InstanceProfile": "arn:aws:iam::{a}:instance-profile/{n}",
    "AWS::Lambda::Function": "arn:aws:lambda:{r}:{a}:function:{n}",
    "AWS::SQS::Queue": "arn:aws:sqs:{r}:{a}:{n}",
    "AWS::SNS::Topic": "arn:aws:sns:{r}:{a}:{n}",
    "AWS::ECR::Repository": "arn:aws:ecr:{r}:{a}:repository/{n}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{r}:{a}:log-group:{n}:*",
    "AWS::KMS::Key": "arn:aws:kms:{r}:{a}:key/{n}",
    "AWS::KMS::Alias": "arn:aws:kms:{r}:{a}:alias/{n}",
    "AWS::EKS::Cluster": "arn:aws:eks:{r}:{a}:cluster/{n}",
    "AWS::S3::Bucket": "arn:aws:s3:::{n}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{r}:{a}:secret:{n}-AbCdEf",
    "AWS::CodeBuild::Project": "arn:aws:codebuild:{r}:{a}:project/{n}",
    "AWS::CodePipeline::Pipeline": "arn:aws:codepipeline:{r}:{a}:{n}",
    "AWS::Events::Rule": "arn:aws:events:{r}:{a}:rule/{n}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{a}:policy/{n}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{r}:{a}:stateMachine:{n}",
    "AWS::EFS::FileSystem": "arn:aws:elasticfilesystem:{r}:{a}:file-system/fs-0123456789abcdef0",
}
# Types whose Ref is their ARN; for the rest Ref is a name or id.
_REF_IS_ARN = {
    "AWS::SNS::Topic",
    "AWS::SecretsManager::Secret",
    "AWS::IAM::ManagedPolicy",
    "AWS::StepFunctions::StateMachine",
}
_REF_SPECIAL = {
    "AWS::SQS::Queue": "https://sqs.{r}.amazonaws.com/{a}/{n}",
    "AWS::EFS::FileSystem": "fs-0123456789abcdef0",
    "AWS::EC2::SecurityGroup": "sg-0123456789abcdef0",
    "AWS::EC2::VPC": "vpc-0123456789abcdef0",
    "AWS::EC2::Subnet": "subnet-0123456789abcdef0",
    "AWS::KMS::Key": "0123abcd-01ab-23cd-45ef-0123456789ab",
}


@dataclass(frozen=True)
class PolicyDocument:
    stack: str
    logical_id: str
    name: str  # logical id, plus the inline policy's name for roles
    document: dict


def _name(logical_id: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", logical_id.lower())[:48] or "x"


class Resolver:
    def __init__(self, template: dict, imports: dict[str, Any] | None = None) -> None:
        self.resources = template.get("Resources", {})
        self.parameters = template.get("Parameters", {})
        self.imports = imports or {}

    def _type(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise KeyError(f"unknown resource {logical_id}")
        return self.resources[logical_id]["Type"]

    def ref(self, target: str) -> Any:
        if target in PSEUDO:
            return PSEUDO[target]
        if target in self.parameters:
            return f"param-{_name(target)}"
        kind = self._type(target)
        n = _name(target)
        if kind in _REF_IS_ARN:
            return _ARN[kind].format(a=ACCOUNT, r=REGION, n=n)
        if kind in _REF_SPECIAL:
            return _REF_SPECIAL[kind].format(a=ACCOUNT, r=REGION, n=n)
        return n

    def get_att(self, target: str, attribute: str) -> Any:
        kind = self._type(target)
        n = _name(target)
        if attribute == "Arn" and kind in _ARN:
            return _ARN[kind].format(a=ACCOUNT, r=REGION, n=n)
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return n
        if (kind, attribute) == ("AWS::KMS::Key", "KeyId"):
            return self.ref(target)
        raise KeyError(f"no placeholder for Fn::GetAtt {kind}.{attribute}")

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                target, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(target, attribute)
            if key == "Fn::Join":
                separator, parts = value
                return separator.join(str(self(part)) for part in self(parts))
            if key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                variables = {k: self(v) for k, v in variables.items()}

                def substitute(match: re.Match) -> str:
                    name = match.group(1)
                    if name in variables:
                        return str(variables[name])
                    if "." in name:
                        return str(self.get_att(*name.split(".", 1)))
                    return str(self.ref(name))

                return re.sub(r"\$\{([^}!]+)\}", substitute, text)
            if key == "Fn::Select":
                index, items = value
                return self(items)[int(self(index))]
            if key == "Fn::Split":
                separator, text = value
                return str(self(text)).split(separator)
            if key == "Fn::ImportValue":
                name = self(value)
                if name not in self.imports:
                    raise KeyError(f"no export {name}")
                return self.imports[name]
            if key.startswith("Fn::"):
                raise KeyError(f"no placeholder for {key}")
        return {k: self(v) for k, v in node.items()}


def exports(templates: dict[str, dict]) -> dict[str, Any]:
    """Every stack's exports, resolved within its own stack (exports of exports excepted)."""
    found: dict[str, Any] = {}
    for template in templates.values():
        resolver = Resolver(template)
        for output in template.get("Outputs", {}).values():
            if "Export" in output:
                try:
                    found[resolver(output["Export"]["Name"])] = resolver(output["Value"])
                except KeyError:
                    continue
    return found


def _strip_novalue(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_novalue(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_strip_novalue(v) for v in node if v is not None]
    return node


def project_policies(templates: dict[str, dict]) -> Iterator[PolicyDocument]:
    imports = exports(templates)
    for stack, template in templates.items():
        resolve = Resolver(template, imports)
        for logical_id, resource in template.get("Resources", {}).items():
            if any(fragment in logical_id for fragment in CDK_INTERNAL):
                continue
            if logical_id.startswith(CDK_PIPELINES_PREFIX) and _has_pipeline(template):
                continue
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                yield PolicyDocument(
                    stack, logical_id, logical_id, _strip_novalue(resolve(props["PolicyDocument"]))
                )
            elif kind == "AWS::IAM::Role":
                for inline in props.get("Policies") or []:
                    yield PolicyDocument(
                        stack,
                        logical_id,
                        f"{logical_id}/{resolve(inline['PolicyName'])}",
                        _strip_novalue(resolve(inline["PolicyDocument"])),
                    )


def _has_pipeline(template: dict) -> bool:
    return any(r["Type"] == "AWS::CodePipeline::Pipeline" for r in template.get("Resources", {}).values())


def construct_id(logical_id: str) -> str:
    """A logical id without CDK's 8-character hash: stable across configs."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)
