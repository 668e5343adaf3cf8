"""Record what cloud-provider-aws's service controller reads and writes, from its source.

EKS runs kubernetes/cloud-provider-aws for `type: LoadBalancer` Services when no AWS Load
Balancer Controller is installed (ours is not). Two sets of facts about it are recorded from
`pkg/providers/v1/` at a release tag into tests/data/upstream/cloud-provider-aws-<tag>.json
(plus the commit they were read from):

- `annotations`: the `ServiceAnnotation*` string constants of aws.go. An annotation it does
  not know is ignored without a word, so a misspelt one would silently give a public or
  unencrypted load balancer; tests/test_frontend_exposure.py checks every annotation we render
  against them, and the record's Kubernetes minor against ours.
- `tags`: how it marks what it creates, which the teardown guard
  (stacks/teardown_guard_handler/index.py) relies on to delete load balancers of Services
  that outlived the cluster: the cluster tag prefix (`TagNameKubernetesClusterPrefix`, tags.go),
  the owned lifecycle value (`ResourceLifecycleOwned`), the service-name tag key
  (`TagNameKubernetesService`, aws.go), the names it gives the security groups it makes
  (`"k8s-elb-" + loadBalancerName` for Classic ELBs, `GetSecurityGroupNameForNLB` for NLBs),
  and per resource kind the tags it applies. The kinds are read from the code paths that
  create them (each must still match, or the refresh stops): ensureLoadBalancerv2 and
  ensureLoadBalancer add the service-name tag and build the cluster's `owned` tags for the NLB
  and the Classic ELB, createListenerV2/ensureTargetGroup pass the same tags to
  CreateTargetGroup, and ensureSecurityGroup builds `owned` tags (no service-name) for the
  security group. tests/test_teardown_guard.py holds the handler and its IAM conditions to it.

    python -m tools.cloud_provider_aws --repo /path/cloud-provider-aws.git --ref v1.36.1
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from tools.karpenter_tags import func_body

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "tests" / "data" / "upstream"
PROVIDER_DIR = "pkg/providers/v1"
AWS_GO = f"{PROVIDER_DIR}/aws.go"
TAGS_GO = f"{PROVIDER_DIR}/tags.go"
LOADBALANCER_GO = f"{PROVIDER_DIR}/aws_loadbalancer.go"
_CONSTANT = re.compile(r'^\s*(?:const\s+)?(ServiceAnnotation\w+)\s*=\s*"([^"]+)"', re.MULTILINE)
# Placeholders in the recorded tags, as tools/karpenter_tags.py uses {cluster}.
CLUSTER = "{cluster}"
SERVICE = "{namespace}/{name}"


def record_path(ref: str) -> Path:
    return DATA_DIR / f"cloud-provider-aws-{ref}.json"


def load_record(ref: str) -> dict:
    return json.loads(record_path(ref).read_text())


def extract(source: str) -> dict[str, str]:
    """Go constant name -> annotation, for every ServiceAnnotation* string constant."""
    found = dict(_CONSTANT.findall(source))
    if len(found) < 10 or "ServiceAnnotationLoadBalancerInternal" not in found:
        raise SystemExit(f"{AWS_GO}: no longer declares the ServiceAnnotation* constants as expected")
    return found


def string_constant(source: str, name: str, where: str) -> str:
    """The value of `const Name = "..."` or of `Name = "..."` inside a const block."""
    match = re.search(rf'^\s*(?:const\s+)?{name}(?:\s+\w+)?\s*=\s*"([^"]*)"', source, re.M)
    if not match:
        raise SystemExit(f"{where}: string constant {name} not found")
    return match.group(1)


def _require(body: str, pattern: str, where: str, what: str) -> dict:
    if not re.search(pattern, body, re.S):
        raise SystemExit(f"{where}: no longer matches {pattern!r} ({what})")
    return {"file": where.split(" ")[0], "in": where.split(" ", 1)[-1], "pattern": pattern, "shows": what}


def extract_tags(aws_go: str, tags_go: str, loadbalancer_go: str) -> dict:
    """The tags the service controller puts on what it creates, and its security group names."""
    prefix = string_constant(tags_go, "TagNameKubernetesClusterPrefix", TAGS_GO)
    owned = string_constant(tags_go, "ResourceLifecycleOwned", TAGS_GO)
    service_key = string_constant(aws_go, "TagNameKubernetesService", AWS_GO)

    # buildTags(lifecycle, extra) = extra + {TagNameKubernetesClusterPrefix + ClusterID: lifecycle}
    build = func_body(tags_go, "buildTags", TAGS_GO)
    evidence = [
        _require(
            func_body(tags_go, "clusterTagKey", TAGS_GO),
            r"return TagNameKubernetesClusterPrefix \+ t\.ClusterID",
            f"{TAGS_GO} clusterTagKey",
            "the cluster tag key is the prefix + the cluster name",
        ),
        _require(
            build,
            r"tags\[t\.clusterTagKey\(\)\] = string\(lifecycle\)",
            f"{TAGS_GO} buildTags",
            "buildTags sets the cluster tag to the lifecycle it is given",
        ),
    ]
    service_tags = {prefix + CLUSTER: owned, service_key: SERVICE}
    cluster_tags = {prefix + CLUSTER: owned}
    service_tagged = (
        r"tags\[TagNameKubernetesService\] = namespacedName\.String\(\)\s*"
        r"tags = c\.tagging\.buildTags\(ResourceLifecycleOwned, tags\)"
    )

    def body_of(source: str, rel: str, function: str) -> tuple[str, str]:
        return func_body(source, function, rel), f"{rel} {function}"

    checks: list[tuple[str, str, str, str, str]] = [
        # (resource kind, source, file, function, pattern)
        ("load-balancer", loadbalancer_go, LOADBALANCER_GO, "ensureLoadBalancerv2", service_tagged),
        (
            "load-balancer",
            loadbalancer_go,
            LOADBALANCER_GO,
            "ensureLoadBalancerv2",
            r"elbv2\.CreateLoadBalancerInput\{.*?for k, v := range tags \{\s*createRequest\.Tags = append",
        ),
        ("classic-load-balancer", loadbalancer_go, LOADBALANCER_GO, "ensureLoadBalancer", service_tagged),
        (
            "classic-load-balancer",
            loadbalancer_go,
            LOADBALANCER_GO,
            "ensureLoadBalancer",
            r"for k, v := range tags \{\s*createRequest\.Tags = append.*?c\.elb\.CreateLoadBalancer\(",
        ),
        (
            "target-group",
            loadbalancer_go,
            LOADBALANCER_GO,
            "ensureLoadBalancerv2",
            r"c\.createListenerV2\([^)]*, tags\)",
        ),
        (
            "target-group",
            loadbalancer_go,
            LOADBALANCER_GO,
            "createListenerV2",
            r"c\.ensureTargetGroup\([^)]*tags,\s*\)",
        ),
        (
            "target-group",
            loadbalancer_go,
            LOADBALANCER_GO,
            "ensureTargetGroup",
            r"for k, v := range tags \{.*?input\.Tags = targetGroupTags.*?c\.elbv2\.CreateTargetGroup\(ctx, input\)",
        ),
        (
            "security-group",
            aws_go,
            AWS_GO,
            "ensureSecurityGroup",
            r"tags := c\.tagging\.buildTags\(ResourceLifecycleOwned, additionalTags\).*?"
            r"ResourceType: ec2types\.ResourceTypeSecurityGroup,\s*Tags: +awsTags",
        ),
        ("security-group", aws_go, AWS_GO, "createSecurityGroup", r"c\.ensureSecurityGroup\(ctx, sgName,"),
    ]
    for kind, source, rel, function, pattern in checks:
        body, where = body_of(source, rel, function)
        evidence.append(_require(body, pattern, where, f"{kind}: tagged by {function}"))
    resources = {
        "load-balancer": service_tags,
        "classic-load-balancer": service_tags,
        "target-group": service_tags,
        "security-group": cluster_tags,
    }

    classic = re.search(
        r'sgName := "([^"]+)" \+ loadBalancerName', func_body(aws_go, "buildELBSecurityGroupList", AWS_GO)
    )
    nlb = re.search(
        r'return fmt\.Sprintf\("([^"%]*)%[^"]*", sanitizedNamespace, sanitizedName, uuid\)',
        func_body(aws_go, "GetSecurityGroupNameForNLB", AWS_GO),
    )
    if not classic or not nlb:
        raise SystemExit(f"{AWS_GO}: the security group names are no longer built as expected")
    evidence.append(
        _require(
            func_body(aws_go, "buildELBSecurityGroupList", AWS_GO),
            r"c\.createSecurityGroup\(ctx, sgName,",
            f"{AWS_GO} buildELBSecurityGroupList",
            "the Classic ELB's security group is created under that name",
        )
    )
    return {
        "cluster_tag_prefix": prefix,
        "owned_value": owned,
        "service_name_tag_key": service_key,
        "security_group_name_prefixes": {
            "classic-load-balancer": classic.group(1),
            "load-balancer": nlb.group(1),
        },
        "resources": resources,
        "evidence": evidence,
    }


def build_record(repo: str, ref: str) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout

    commit = git("rev-parse", f"{ref}^{{commit}}").strip()

    def show(rel: str) -> str:
        return git("show", f"{commit}:{rel}")

    aws_go = show(AWS_GO)
    return {
        "what": "what cloud-provider-aws's service controller reads (Service annotations) and "
        "how it tags and names what it creates",
        "source": f"https://github.com/kubernetes/cloud-provider-aws {PROVIDER_DIR}",
        "ref": ref,
        "commit": commit,
        "generated_by": "tools/cloud_provider_aws.py",
        "annotations": dict(sorted(extract(aws_go).items())),
        "tags": extract_tags(aws_go, show(TAGS_GO), show(LOADBALANCER_GO)),
    }


# --------------------------------------------------------------------------- comparisons


def mismatches(used: dict[str, dict[str, str | None]], record: dict) -> list[str]:
    """What code relies on vs the record: one line per tag the service controller does not apply.

    used maps a resource kind ("load-balancer", "target-group", ...) to {tag key: value}, with
    the record's placeholders ({cluster}); None means "any value" (a StringLike "*" condition,
    or a presence check in the handler).
    """
    problems = []
    applied_by_kind = record["tags"]["resources"]
    for kind, tags in sorted(used.items()):
        applied = applied_by_kind.get(kind)
        if applied is None:
            problems.append(f"{kind}: cloud-provider-aws creates no such resource")
            continue
        for key, value in sorted(tags.items()):
            if key not in applied:
                problems.append(
                    f"{kind}: tag {key!r} is not applied by cloud-provider-aws {record['ref']} "
                    f"(it applies {', '.join(sorted(applied))})"
                )
            elif value is not None and applied[key] != value:
                problems.append(
                    f"{kind}: tag {key!r} expected value {value!r}, cloud-provider-aws sets {applied[key]!r}"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repo", required=True, help="a clone or git directory of cloud-provider-aws")
    parser.add_argument("--ref", required=True, help="release tag, e.g. v1.36.1")
    args = parser.parse_args(argv)
    record = build_record(args.repo, args.ref)
    path = record_path(args.ref)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(
        f"{path.relative_to(REPO)}: {len(record['annotations'])} annotations, "
        f"tags of {len(record['tags']['resources'])} resource kinds at {record['commit']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
