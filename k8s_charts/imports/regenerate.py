"""Regenerate the typed classes for the CRDs we create (Karpenter, External Secrets, Prometheus
Operator) into k8s_charts/imports/. Run: `make imports` (output is committed).

The vendored CRDs in k8s_charts/crds/ stay verbatim (tests validate against them). The input
to `cdk8s import` is derived from them: only the served, non-deprecated version, and for
ClusterSecretStore only the `aws` provider. Karpenter's NodeClaim is left out because the
app never creates one (Karpenter does). The full provider list does not compile with
jsii (a `getByTitleFallback` field in the Keeper provider collides with Java getter naming)
and would add megabytes of classes for providers we never use.
"""

from __future__ import annotations

import copy
import subprocess
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "k8s_charts" / "crds"
OUT = REPO / "k8s_charts" / "imports"

# import module name -> vendored CRD files it is generated from
MODULES = {
    "karpenter": [
        CRDS / "karpenter" / "karpenter.sh_nodepools.yaml",
        CRDS / "karpenter" / "karpenter.k8s.aws_ec2nodeclasses.yaml",
    ],
    "external_secrets": [
        CRDS / "external-secrets" / "external-secrets.io_externalsecrets.yaml",
        CRDS / "external-secrets" / "external-secrets.io_clustersecretstores.yaml",
    ],
    "prometheus_operator": [
        CRDS / "prometheus-operator" / "crd-podmonitors.yaml",
        CRDS / "prometheus-operator" / "crd-servicemonitors.yaml",
        CRDS / "prometheus-operator" / "crd-prometheusrules.yaml",
    ],
}
KEEP_PROVIDERS = {"aws"}


def for_import(crd: dict) -> dict:
    """The CRD as `cdk8s import` should see it (see the module docstring for why)."""
    crd = copy.deepcopy(crd)
    spec = crd["spec"]
    spec["versions"] = [
        v for v in spec["versions"] if v.get("served") and not v.get("deprecated")
    ]
    if spec["names"]["kind"] == "ClusterSecretStore":
        for version in spec["versions"]:
            provider = version["schema"]["openAPIV3Schema"]["properties"]["spec"][
                "properties"
            ]["provider"]
            provider["properties"] = {
                k: v for k, v in provider["properties"].items() if k in KEEP_PROVIDERS
            }
    return crd


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        # One module per call: the cdk8s CLI imports only the first of several specs.
        for module, files in MODULES.items():
            docs = [for_import(yaml.safe_load(path.read_text())) for path in files]
            combined = Path(tmp) / f"{module}.yaml"
            combined.write_text(yaml.safe_dump_all(docs, sort_keys=False))
            subprocess.run(
                ["npx", "cdk8s", "import", f"{module}:={combined}", "--language", "python",
                 "--output", str(OUT), "--no-check-upgrade"],
                cwd=REPO,
                check=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
