"""Validate Kubernetes objects: custom resources against their vendored CRD schemas (structure,
then the CRD's CEL rules: tests/tools/crd_cel.py), core objects against the Kubernetes
OpenAPI schema (kubernetes-validate)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from config import versions
from tests.tools.crd_cel import cel_errors
from tests.tools.synth import REPO

CRD_DIR = REPO / "k8s_charts" / "crds"


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema for every vendored CRD."""
    schemas: dict[tuple[str, str], dict] = {}
    for path in sorted(CRD_DIR.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = schema
    return schemas


def _to_json_schema(node: Any) -> Any:
    """Kubernetes structural schema -> JSON Schema jsonschema understands."""
    if isinstance(node, dict):
        out = {k: _to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable"):
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
        out.pop("nullable", None)
        return out
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    return node


def validate_custom_resource(obj: dict) -> list[str]:
    key = (obj.get("apiVersion"), obj.get("kind"))
    schema = crd_schemas().get(key)
    if schema is None:
        return [f"{key[1]} {key[0]}: no vendored CRD schema in k8s_charts/crds"]
    validator = jsonschema.Draft7Validator(_to_json_schema(schema))
    name = obj.get("metadata", {}).get("name", "?")
    errors = [
        f"{key[1]}/{name}: {'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(obj)
    ]
    if errors:
        return errors
    # The API server's CEL rules only run on an object that passed the structural schema.
    return [f"{key[1]}/{name}: {error}" for error in cel_errors(schema, obj)]


def _kubernetes_schema_version() -> str:
    return f"{versions.KUBERNETES_DEFAULT}.0"


def validate_core(obj: dict) -> list[str]:
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name', '?')}"
    try:
        kubernetes_validate.validate(obj, _kubernetes_schema_version(), strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        return [f"{name}: {path}: {err.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name}: no Kubernetes schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    return []


def is_custom(obj: dict) -> bool:
    """Custom resources live in dotted API groups outside *.k8s.io."""
    group = obj.get("apiVersion", "").rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def validate(obj: dict) -> list[str]:
    return validate_custom_resource(obj) if is_custom(obj) else validate_core(obj)


def validate_all(objects: list[dict]) -> list[str]:
    errors: list[str] = []
    for obj in objects:
        errors.extend(validate(obj))
    return errors


def load_yaml_objects(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def validate_pod_template(template: dict, name: str) -> list[str]:
    """A core/v1 PodTemplateSpec embedded in a custom resource (e.g. a DGD component's
    podTemplate), checked as the `template` of a v1 PodTemplate object."""
    wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}
    return [f"podTemplate of {name}: {error}" for error in validate_core(wrapper)]


def dgd_pod_templates(obj: dict) -> list[tuple[str, dict]]:
    """(graph/component, podTemplate) for every component of a DynamoGraphDeployment."""
    graph = obj.get("metadata", {}).get("name", "?")
    return [
        (f"{graph}/{component.get('name')}", component.get("podTemplate", {}))
        for component in obj.get("spec", {}).get("components", [])
    ]


def schema_errors(objects: list[dict]) -> list[str]:
    """Every object against its schema, plus the pod templates embedded in
    DynamoGraphDeployments against the Kubernetes PodTemplateSpec."""
    errors = validate_all(objects)
    for obj in objects:
        if obj["kind"] == "DynamoGraphDeployment":
            for name, template in dgd_pod_templates(obj):
                errors += validate_pod_template(template, name.replace("/", "-").lower())
    return errors
