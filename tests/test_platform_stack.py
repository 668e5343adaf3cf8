"""Platform stack: EFS model cache, secrets without values, Helm releases, ordering, outputs."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from config import versions

pytestmark = pytest.mark.xdist_group("default")


def resources(synth, kind: str) -> dict[str, dict]:
    return {k: r for k, r in synth.template("platform")["Resources"].items() if r["Type"] == kind}


def helm_releases(synth) -> dict[str, dict]:
    return {
        r["Properties"]["Release"]: (k, r)
        for k, r in resources(synth, "Custom::AWSCDK-EKS-HelmChart").items()
    }


def test_model_cache_file_system(default_synth):
    template = default_synth.assertions("platform")
    template.has_resource_properties(
        "AWS::EFS::FileSystem",
        {"Encrypted": True, "ThroughputMode": "elastic", "PerformanceMode": "generalPurpose"},
    )
    template.has_resource("AWS::EFS::FileSystem", {"DeletionPolicy": "Delete"})  # dev config
    template.resource_count_is("AWS::EFS::MountTarget", 3)  # one per private subnet (3 AZs)


def test_mount_targets_are_in_private_subnets(default_synth):
    network = default_synth.template("network")["Resources"]
    private = {
        k
        for k, r in network.items()
        if r["Type"] == "AWS::EC2::Subnet" and not r["Properties"].get("MapPublicIpOnLaunch", False)
    }
    for target in resources(default_synth, "AWS::EFS::MountTarget").values():
        imported = json.dumps(target["Properties"]["SubnetId"])
        assert any(subnet in imported for subnet in private), imported


def test_nfs_only_from_the_cluster_security_group(default_synth):
    (group,) = resources(default_synth, "AWS::EC2::SecurityGroup").values()
    (ingress,) = group["Properties"]["SecurityGroupIngress"]
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 2049, 2049)
    assert "ClusterSecurityGroupId" in json.dumps(ingress["SourceSecurityGroupId"])
    assert "CidrIp" not in ingress
    assert all(rule["CidrIp"] == "255.255.255.255/32" for rule in group["Properties"]["SecurityGroupEgress"])


def test_hf_token_secret_is_created_without_a_value(default_synth):
    secrets = {
        r["Properties"]["Name"]: r for r in resources(default_synth, "AWS::SecretsManager::Secret").values()
    }
    token = secrets["dynamo-dev/hf-token"]["Properties"]
    assert "SecretString" not in token and "GenerateSecretString" not in token
    grafana = secrets["dynamo-dev/grafana-admin"]["Properties"]
    assert "SecretString" not in grafana
    assert grafana["GenerateSecretString"]["GenerateStringKey"] == "admin-password"


def test_external_secrets_role_reads_only_our_secrets(default_synth):
    secret_ids = set(resources(default_synth, "AWS::SecretsManager::Secret"))
    (policy,) = resources(default_synth, "AWS::IAM::Policy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert {r["Ref"] for r in statement["Resource"]} == secret_ids
    (role,) = resources(default_synth, "AWS::IAM::Role").values()
    principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "pods.eks.amazonaws.com"}
    default_synth.assertions("platform").has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {"Namespace": "external-secrets", "ServiceAccount": "external-secrets", "RoleArn": Match.any_value()},
    )


@pytest.mark.parametrize(
    "release,chart,repository,version",
    [
        ("dynamo-platform", "dynamo-platform", versions.DYNAMO_PLATFORM_CHART_REPO, versions.DYNAMO),
        (
            "external-secrets",
            "external-secrets",
            versions.EXTERNAL_SECRETS_CHART_REPO,
            versions.EXTERNAL_SECRETS,
        ),
        (
            "kube-prometheus-stack",
            "kube-prometheus-stack",
            versions.PROMETHEUS_COMMUNITY_CHART_REPO,
            versions.KUBE_PROMETHEUS_STACK,
        ),
        ("dcgm-exporter", "dcgm-exporter", versions.DCGM_EXPORTER_CHART_REPO, versions.DCGM_EXPORTER),
    ],
)
def test_helm_releases_are_pinned(default_synth, release, chart, repository, version):
    _, resource = helm_releases(default_synth)[release]
    props = resource["Properties"]
    assert (props["Chart"], props["Repository"], props["Version"]) == (chart, repository, version)


def test_dynamo_platform_values_in_the_template(default_synth):
    _, resource = helm_releases(default_synth)["dynamo-platform"]
    values = json.loads(resource["Properties"]["Values"])
    assert values["dynamo-operator"]["upgradeCRD"] is True
    assert values["dynamo-operator"]["dynamo"]["metrics"]["prometheusEndpoint"].startswith(
        "http://kube-prometheus-stack-prometheus.monitoring.svc"
    )
    assert resource["Properties"]["Namespace"] == "dynamo-system"
    # The default config has no multinode graph.
    assert values["global"]["grove"] == {"install": False}


def _depends(template: dict, logical_id: str) -> set[str]:
    return set(template["Resources"][logical_id].get("DependsOn", []))


def test_custom_resources_wait_for_their_operators(default_synth):
    template = default_synth.template("platform")
    manifests = {
        k: str(r["Properties"]["Manifest"])
        for k, r in resources(default_synth, "Custom::AWSCDK-EKS-KubernetesResource").items()
    }
    releases = {name: k for name, (k, _) in helm_releases(default_synth).items()}
    (monitors,) = [k for k, m in manifests.items() if '"kind":"PodMonitor"' in m]
    (synced,) = [k for k, m in manifests.items() if '"kind":"ExternalSecret"' in m]
    (cache,) = [k for k, m in manifests.items() if '"kind":"PersistentVolumeClaim"' in m]
    assert releases["kube-prometheus-stack"] in _depends(template, monitors)
    assert releases["external-secrets"] in _depends(template, synced)
    assert synced in _depends(template, releases["kube-prometheus-stack"])  # Grafana admin secret first
    assert any("MountTarget" in d for d in _depends(template, cache))
    pod_identity = next(iter(resources(default_synth, "AWS::EKS::PodIdentityAssociation")))
    assert pod_identity in _depends(template, releases["external-secrets"])


def test_every_release_installs_into_a_namespace_we_create_first(default_synth):
    """No Helm release creates its namespace (it would carry no Pod Security labels): each one's
    namespace is in the Namespaces manifest, and the release depends on that manifest, so it is
    applied after it and deleted before it. kube-system (Cluster stack) is EKS's."""
    template = default_synth.template("platform")
    manifests = resources(default_synth, "Custom::AWSCDK-EKS-KubernetesResource")
    (ns_id,) = [
        k
        for k, r in manifests.items()
        if isinstance(r["Properties"]["Manifest"], str)
        and {o["kind"] for o in json.loads(r["Properties"]["Manifest"])} == {"Namespace"}
    ]
    created = {o["metadata"]["name"] for o in json.loads(manifests[ns_id]["Properties"]["Manifest"])}
    releases = helm_releases(default_synth)
    assert {"dynamo-platform", "external-secrets", "kube-prometheus-stack", "dcgm-exporter"} <= set(releases)
    for name, (logical_id, resource) in releases.items():
        assert not resource["Properties"].get("CreateNamespace"), name  # omitted when false
        assert resource["Properties"]["Namespace"] in created, name
        assert ns_id in _depends(template, logical_id), name
    for release in default_synth.template("cluster")["Resources"].values():
        if release["Type"] == "Custom::AWSCDK-EKS-HelmChart":
            assert release["Properties"]["Namespace"] == "kube-system", release["Properties"]["Release"]


def test_outputs_tell_users_how_to_reach_grafana_prometheus_and_set_the_token(default_synth):
    outputs = {k: v["Value"] for k, v in default_synth.template("platform")["Outputs"].items()}
    assert outputs["GrafanaPortForwardCommand"] == (
        "kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80"
    )
    assert outputs["PrometheusPortForwardCommand"] == (
        "kubectl -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090:9090"
    )
    assert outputs["SetHfTokenCommand"].startswith(
        "aws secretsmanager put-secret-value --region us-west-2 --secret-id dynamo-dev/hf-token"
    )
    assert "dynamo-dev/grafana-admin" in outputs["GrafanaPasswordCommand"]


def test_platform_depends_on_cluster(default_synth):
    manifest = json.loads((default_synth.outdir / "manifest.json").read_text())
    deps = manifest["artifacts"]["dev-platform"].get("dependencies", [])
    assert "dev-cluster" in deps
