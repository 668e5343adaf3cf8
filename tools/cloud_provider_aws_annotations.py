"""Record the Service annotations the AWS cloud provider's service controller reads.

EKS runs kubernetes/cloud-provider-aws for `type: LoadBalancer` Services when no AWS Load
Balancer Controller is installed (ours is not). An annotation it does not know is ignored
without a word, so a misspelt one would silently give a public or unencrypted load balancer.
This script reads the `ServiceAnnotation*` string constants from `pkg/providers/v1/aws.go`
at a release tag and writes tests/data/upstream/cloud-provider-aws-service-annotations-<tag>.json
(names only, plus the commit they were read from). tests/test_frontend_exposure.py checks
every annotation we render against it, and the record's Kubernetes minor against ours.

    python -m tools.cloud_provider_aws_annotations --repo /path/cloud-provider-aws.git --ref v1.36.1
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "tests" / "data" / "upstream"
SOURCE_PATH = "pkg/providers/v1/aws.go"
_CONSTANT = re.compile(r'^\s*(?:const\s+)?(ServiceAnnotation\w+)\s*=\s*"([^"]+)"', re.MULTILINE)


def record_path(ref: str) -> Path:
    return DATA_DIR / f"cloud-provider-aws-service-annotations-{ref}.json"


def extract(source: str) -> dict[str, str]:
    """Go constant name -> annotation, for every ServiceAnnotation* string constant."""
    found = dict(_CONSTANT.findall(source))
    if len(found) < 10 or "ServiceAnnotationLoadBalancerInternal" not in found:
        raise SystemExit(f"{SOURCE_PATH}: no longer declares the ServiceAnnotation* constants as expected")
    return found


def build_record(repo: str, ref: str) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout

    commit = git("rev-parse", f"{ref}^{{commit}}").strip()
    constants = extract(git("show", f"{commit}:{SOURCE_PATH}"))
    return {
        "what": "Service annotations read by cloud-provider-aws's service controller",
        "source": f"https://github.com/kubernetes/cloud-provider-aws {SOURCE_PATH}",
        "ref": ref,
        "commit": commit,
        "generated_by": "tools/cloud_provider_aws_annotations.py",
        "annotations": dict(sorted(constants.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="a clone or git directory of cloud-provider-aws")
    parser.add_argument("--ref", required=True, help="release tag, e.g. v1.36.1")
    args = parser.parse_args(argv)
    record = build_record(args.repo, args.ref)
    path = record_path(args.ref)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{path.relative_to(REPO)}: {len(record['annotations'])} annotations at {record['commit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
