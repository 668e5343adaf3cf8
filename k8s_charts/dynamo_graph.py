"""Typed model of `nvidia.com/v1beta1` DynamoGraphDeployment (the fields this project emits).

Upstream ships no CRD we can vendor at a usable size (the DGD CRD is ~3 MB), so this module
is the typed layer instead: frozen dataclasses mirroring the v1beta1 API reference
(docs/fern/pages/reference/kubernetes-api/dynamo-graph-deployment.mdx and
dynamo-component-deployment.mdx, Dynamo 1.6). k8s_charts/crds/dynamo/ holds the matching
hand-written schema the tests validate every emitted object against. Pod templates are built
with the typed Kubernetes API (cdk8s_plus_36.k8s) and serialised by cdk8s itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import cdk8s
from cdk8s_plus_36 import k8s
from constructs import Construct

API_VERSION = "nvidia.com/v1beta1"
KIND = "DynamoGraphDeployment"
ComponentType = Literal["frontend", "worker", "prefill", "decode", "planner"]
BackendFramework = Literal["vllm", "sglang", "trtllm"]


@dataclass(frozen=True)
class Multinode:
    node_count: int  # >= 2, immutable after creation

    def to_json(self) -> dict:
        return {"nodeCount": self.node_count}


@dataclass(frozen=True)
class CompilationCache:
    pvc_name: str
    mount_path: str | None = None  # empty: the operator's backend default

    def to_json(self) -> dict:
        out: dict[str, Any] = {"pvcName": self.pvc_name}
        if self.mount_path:
            out["mountPath"] = self.mount_path
        return out


@dataclass(frozen=True)
class ScalingAdapter:
    """Present (even empty) = a DynamoGraphDeploymentScalingAdapter owns `replicas`."""

    def to_json(self) -> dict:
        return {}


@dataclass(frozen=True)
class Component:
    name: str
    type: ComponentType
    replicas: int | None  # None: not set here (a scaling adapter owns it)
    pod_template: k8s.PodTemplateSpec
    multinode: Multinode | None = None
    compilation_cache: CompilationCache | None = None
    scaling_adapter: ScalingAdapter | None = None
    shared_memory_size: str | None = None  # resource.Quantity; None = operator default 8Gi

    def to_json(self, pod_template_json: dict) -> dict:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.replicas is not None:
            out["replicas"] = self.replicas
        if self.multinode:
            out["multinode"] = self.multinode.to_json()
        if self.compilation_cache:
            out["compilationCache"] = self.compilation_cache.to_json()
        if self.scaling_adapter:
            out["scalingAdapter"] = self.scaling_adapter.to_json()
        if self.shared_memory_size:
            out["sharedMemorySize"] = self.shared_memory_size
        out["podTemplate"] = pod_template_json
        return out


@dataclass(frozen=True)
class DynamoGraphDeploymentSpec:
    components: list[Component]
    backend_framework: BackendFramework | None = None
    env: list[k8s.EnvVar] = field(default_factory=list)


class DynamoGraphDeployment(Construct):
    """One DGD ApiObject; pod templates are serialised through cdk8s's own k8s classes."""

    def __init__(
        self,
        scope: cdk8s.Chart,
        construct_id: str,
        *,
        name: str,
        namespace: str,
        spec: DynamoGraphDeploymentSpec,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        for component in spec.components:
            if (component.replicas is None) != (component.scaling_adapter is not None):
                raise ValueError(
                    f"DGD {name}: component {component.name} must set replicas unless, and only "
                    "unless, a scaling adapter owns them"
                )
        names = [c.name.lower() for c in spec.components]
        if len(set(names)) != len(names):
            raise ValueError(f"DGD {name}: component names must be unique, got {names}")
        if len(spec.components) > 25:
            raise ValueError(f"DGD {name}: at most 25 components, got {len(spec.components)}")
        # Scratch chart: cdk8s renders each typed PodTemplateSpec to Kubernetes JSON there.
        scratch = cdk8s.Chart(cdk8s.App(), "scratch")
        components = []
        for index, component in enumerate(spec.components):
            template = k8s.KubePodTemplate(scratch, f"t{index}", template=component.pod_template)
            components.append(component.to_json(template.to_json()["template"]))
        body: dict[str, Any] = {"components": components}
        if spec.backend_framework:
            body["backendFramework"] = spec.backend_framework
        if spec.env:
            holder = k8s.KubePodTemplate(
                scratch,
                "env",
                template=k8s.PodTemplateSpec(
                    spec=k8s.PodSpec(containers=[k8s.Container(name="env", env=spec.env)])
                ),
            )
            body["env"] = holder.to_json()["template"]["spec"]["containers"][0]["env"]
        self.api_object = cdk8s.ApiObject(
            self,
            "Resource",
            api_version=API_VERSION,
            kind=KIND,
            metadata=cdk8s.ApiObjectMetadata(
                name=name, namespace=namespace, labels=labels, annotations=annotations
            ),
        )
        self.api_object.add_json_patch(cdk8s.JsonPatch.add("/spec", body))
