"""images.source and image_uri: the one place graphs get their image URIs from."""

from __future__ import annotations

import pytest
import yaml

from config import ConfigError, versions
from plan import load_config
from plan.images import image_uri
from tests.tools.synth import REPO

ACCOUNT = "111122223333"


def _config(tmp_path, **images):
    data = yaml.safe_load((REPO / "config" / "default.yaml").read_text())
    data["images"] = images
    data["account"] = "111122223333"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_ngc_is_the_default_and_keeps_upstream_tags(tmp_path):
    cfg = load_config(REPO / "config" / "default.yaml")
    assert cfg.images.source == "ngc"
    assert (
        image_uri(cfg, "vllm-runtime", account=ACCOUNT)
        == f"nvcr.io/nvidia/ai-dynamo/vllm-runtime:{versions.DYNAMO}"
    )
    assert (
        image_uri(cfg, "vllm-runtime", efa=True, account=ACCOUNT)
        == f"nvcr.io/nvidia/ai-dynamo/vllm-runtime:{versions.DYNAMO}-efa"
    )


@pytest.mark.parametrize("image", ["vllm-runtime", "sglang-runtime", "tensorrtllm-runtime"])
def test_ecr_points_at_our_repository(tmp_path, image):
    cfg = _config(tmp_path, source="ecr")
    registry = "111122223333.dkr.ecr.us-west-2.amazonaws.com"
    assert image_uri(cfg, image, account=ACCOUNT) == f"{registry}/dynamo-dev/{image}:{versions.DYNAMO}"
    assert (
        image_uri(cfg, image, efa=True, account=ACCOUNT)
        == f"{registry}/dynamo-dev/{image}:{versions.DYNAMO}-efa"
    )


def test_ecr_keeps_images_we_do_not_build_on_ngc(tmp_path):
    cfg = _config(tmp_path, source="ecr")
    assert (
        image_uri(cfg, "dynamo-planner", account=ACCOUNT)
        == f"nvcr.io/nvidia/ai-dynamo/dynamo-planner:{versions.DYNAMO}"
    )


def test_ecr_without_account_uses_the_deploying_account(tmp_path):
    import aws_cdk as cdk

    cfg = _config(tmp_path, source="ecr").model_copy(update={"account": None})
    uri = image_uri(cfg, "vllm-runtime", account=cdk.Aws.ACCOUNT_ID)
    assert cdk.Token.is_unresolved(uri)
    assert uri.endswith(f".dkr.ecr.us-west-2.amazonaws.com/dynamo-dev/vllm-runtime:{versions.DYNAMO}")


def test_unknown_source_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, source="dockerhub")
    (line,) = err.value.lines
    assert "images.source" in line and "'ngc' or 'ecr'" in line
