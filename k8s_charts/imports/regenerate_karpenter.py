"""Regenerate the typed Karpenter classes (NodePool, EC2NodeClass) into k8s_charts/imports/.
Run: `python -m k8s_charts.imports.regenerate_karpenter` (output is committed).

Input is the vendored CRDs in k8s_charts/crds/karpenter/ (see the README there); NodeClaim
is left out because the app never creates one (Karpenter does).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "k8s_charts" / "crds" / "karpenter"
OUT = REPO / "k8s_charts" / "imports"
FILES = ("karpenter.sh_nodepools.yaml", "karpenter.k8s.aws_ec2nodeclasses.yaml")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        combined = Path(tmp) / "karpenter.yaml"
        docs = [yaml.safe_load((CRDS / name).read_text()) for name in FILES]
        combined.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        subprocess.run(
            ["npx", "cdk8s", "import", f"karpenter:={combined}", "--language", "python",
             "--output", str(OUT), "--no-check-upgrade"],
            cwd=REPO,
            check=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
