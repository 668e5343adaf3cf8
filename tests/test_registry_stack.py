"""Registry stack: hardened ECR repositories."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from config.names import ECR_IMAGES

pytestmark = pytest.mark.xdist_group("default")


@pytest.mark.parametrize("image", ECR_IMAGES)
def test_repository_hardened(default_synth, image):
    default_synth.assertions("registry").has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": f"dynamo-dev/{image}",
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "EncryptionConfiguration": {"EncryptionType": "KMS"},
            "LifecyclePolicy": Match.object_like(
                {"LifecyclePolicyText": Match.string_like_regexp("untagged")}
            ),
        },
    )


def test_dev_empties_repositories_on_destroy(default_synth):
    repos = default_synth.assertions("registry").find_resources("AWS::ECR::Repository")
    assert {r["DeletionPolicy"] for r in repos.values()} == {"Delete"}


def test_outputs_give_uris(default_synth):
    outputs = default_synth.template("registry")["Outputs"]
    assert len([o for o in outputs.values() if "repository" in o.get("Description", "").lower()]) == len(
        ECR_IMAGES
    )
