"""Teardown guard: on stack delete, remove what Karpenter, the VPC CNI and the service
controller leave behind.

Runs after the NodePools and the Karpenter release are gone and before the EKS cluster, the
node role and (in the Network stack) the VPC. Anything still here would block those
deletes: instances hold ENIs and security groups, instance profiles hold the node role.

Only resources tagged for THIS cluster are touched. The tags are the ones Karpenter 1.14.1
applies (read from its source into tests/data/karpenter/resource-tags-v1.14.1.json by
tools/karpenter_tags.py; tests/test_teardown_guard.py holds the constants below to it):
- EC2 instances tagged karpenter.sh/nodepool AND (kubernetes.io/cluster/<name>=owned OR
  eks:eks-cluster-name=<name>)
- launch templates tagged eks:eks-cluster-name=<name> AND karpenter.k8s.aws/ec2nodeclass
  (how Karpenter finds its own; EKS managed node group templates lack the nodeclass tag)
- instance profiles tagged kubernetes.io/cluster/<name>=owned that hold the node role
- ENIs with status `available` in the cluster's subnets tagged kubernetes.io/cluster/<name>=owned
  (Karpenter, through its launch templates) or cluster.k8s.amazonaws.com/name=<name> (VPC CNI)
- only when VolumeTagKey is set (removal_policy: destroy): EBS volumes with status
  `available` tagged <VolumeTagKey>=<name> (the EBS CSI driver's extraVolumeTags) or
  Karpenter's eks:eks-cluster-name=<name> AND karpenter.sh/nodepool (node volumes created
  with deleteOnTermination: false). The system nodes are gone by then, so a volume still
  attached is waiting to detach; a volume already deleted is simply not found.

And what EKS's service controller (cloud-provider-aws 1.36.1) made for LoadBalancer Services
that outlived the cluster (created out of band, or their controller already gone), by the
tags it applies (read from its source into tests/data/upstream/cloud-provider-aws-v1.36.1.json
by tools/cloud_provider_aws.py; tests/test_teardown_guard.py holds the constants below to it):
- ELBv2 load balancers and Classic ELBs tagged kubernetes.io/cluster/<name>=owned AND
  kubernetes.io/service-name (deleted first, so their network interfaces start releasing
  while instances terminate), then ELBv2 target groups tagged the same way;
- security groups in the cluster's VPC tagged kubernetes.io/cluster/<name>=owned whose name
  has the controller's prefix (`k8s-elb-` for Classic ELBs, `k8s-` for NLBs in managed mode).
  The EKS cluster security group carries the same tag but is named `eks-cluster-sg-...` and
  is left to EKS. Rules of other groups that reference one of these (the controller opens
  the nodes' group to the Classic ELB's group) are revoked first, and the wait for the load
  balancers' network interfaces to leave the groups is bounded by LB_ENI_WAIT_SECONDS; a
  group still in use then fails the delete with its id so it can be retried.

Every step lists before it acts, so a second run (CloudFormation retries) finds nothing.
Waiting is bounded by the Lambda's remaining time; if instances are still shutting down at
the deadline the delete fails with their ids and can be retried.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from botocore.exceptions import ClientError

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]
# Stop waiting this long before the Lambda would be killed, to report instead of vanishing.
SAFETY_MARGIN_SECONDS = 60
POLL_SECONDS = float(os.environ.get("GUARD_POLL_SECONDS", "10"))
VOLUME_WAIT_SECONDS = 180

# Tags Karpenter 1.14.1 puts on what it creates ("{cluster}" is the cluster name). Mirrored
# in the IAM conditions of stacks/teardown_guard.py; both are tested against the record.
CLUSTER_OWNED_TAG_KEY = "kubernetes.io/cluster/{cluster}"
CLUSTER_OWNED_TAG_VALUE = "owned"
EKS_CLUSTER_NAME_TAG_KEY = "eks:eks-cluster-name"
NODEPOOL_TAG_KEY = "karpenter.sh/nodepool"
NODECLASS_TAG_KEY = "karpenter.k8s.aws/ec2nodeclass"
# Which of them the guard relies on, per resource kind: {tag key: value or None for "any"}.
KARPENTER_TAGS: dict[str, dict[str, str | None]] = {
    "instance": {
        CLUSTER_OWNED_TAG_KEY: CLUSTER_OWNED_TAG_VALUE,
        EKS_CLUSTER_NAME_TAG_KEY: "{cluster}",
        NODEPOOL_TAG_KEY: None,
    },
    "launch-template": {EKS_CLUSTER_NAME_TAG_KEY: "{cluster}", NODECLASS_TAG_KEY: None},
    "instance-profile": {CLUSTER_OWNED_TAG_KEY: CLUSTER_OWNED_TAG_VALUE},
    "network-interface": {CLUSTER_OWNED_TAG_KEY: CLUSTER_OWNED_TAG_VALUE},
    "volume": {EKS_CLUSTER_NAME_TAG_KEY: "{cluster}", NODEPOOL_TAG_KEY: None},
}
# Not Karpenter's: the VPC CNI tags the ENIs it creates with the cluster name
# (eniClusterTagKey in amazon-vpc-cni-k8s pkg/awsutils).
VPC_CNI_CLUSTER_TAG_KEY = "cluster.k8s.amazonaws.com/name"

# cloud-provider-aws 1.36.1's service controller: how it tags and names what it creates for a
# LoadBalancer Service. Mirrored in the IAM conditions of stacks/teardown_guard.py; both are
# tested against tests/data/upstream/cloud-provider-aws-v1.36.1.json.
SERVICE_CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
SERVICE_OWNED_VALUE = "owned"
SERVICE_NAME_TAG_KEY = "kubernetes.io/service-name"
SERVICE_CLUSTER_TAG_KEY = SERVICE_CLUSTER_TAG_PREFIX + "{cluster}"
# Per resource kind, the tags the guard requires: {tag key: value or None for "any"}.
SERVICE_CONTROLLER_TAGS: dict[str, dict[str, str | None]] = {
    "load-balancer": {SERVICE_CLUSTER_TAG_KEY: SERVICE_OWNED_VALUE, SERVICE_NAME_TAG_KEY: None},
    "classic-load-balancer": {SERVICE_CLUSTER_TAG_KEY: SERVICE_OWNED_VALUE, SERVICE_NAME_TAG_KEY: None},
    "target-group": {SERVICE_CLUSTER_TAG_KEY: SERVICE_OWNED_VALUE, SERVICE_NAME_TAG_KEY: None},
    "security-group": {SERVICE_CLUSTER_TAG_KEY: SERVICE_OWNED_VALUE},
}
# Names of the security groups it creates: "k8s-elb-" + the Classic ELB's name, and
# "k8s-<namespace>-<name>-<hash>" for an NLB (NLBSecurityGroupMode: Managed).
SERVICE_SG_NAME_PREFIXES = {"classic-load-balancer": "k8s-elb-", "load-balancer": "k8s-"}
# How long the security group step waits for deleted load balancers' ENIs to go.
LB_ENI_WAIT_SECONDS = 300


def owned_key(cluster_name: str) -> str:
    return CLUSTER_OWNED_TAG_KEY.format(cluster=cluster_name)


def on_event(event: dict, context: Any) -> dict:
    props = event["ResourceProperties"]
    physical_id = event.get("PhysicalResourceId") or f"teardown-guard-{props['ClusterName']}"
    if event["RequestType"] != "Delete":
        return {"PhysicalResourceId": physical_id}
    deadline = time.monotonic() + _budget_seconds(context)
    summary = sweep(
        cluster_name=props["ClusterName"],
        subnet_ids=list(props["SubnetIds"]),
        node_role_name=props["NodeRoleName"],
        volume_tag_key=props.get("VolumeTagKey", ""),
        deadline=deadline,
    )
    LOG.info("teardown guard for %s: %s", props["ClusterName"], summary)
    return {"PhysicalResourceId": physical_id, "Data": {k: str(v) for k, v in summary.items()}}


def _budget_seconds(context: Any) -> float:
    remaining_ms = context.get_remaining_time_in_millis() if context else 600_000
    return max(remaining_ms / 1000 - SAFETY_MARGIN_SECONDS, 0)


def sweep(
    *,
    cluster_name: str,
    subnet_ids: list[str],
    node_role_name: str,
    deadline: float,
    volume_tag_key: str = "",
    ec2=None,
    iam=None,
    elbv2=None,
    elb=None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    ec2 = ec2 or boto3.client("ec2")
    iam = iam or boto3.client("iam")
    elbv2 = elbv2 or boto3.client("elbv2")
    elb = elb or boto3.client("elb")
    # Load balancers first: their ENIs release while the instances terminate.
    load_balancers = delete_load_balancers(elbv2, cluster_name)
    classic_load_balancers = delete_classic_load_balancers(elb, cluster_name)
    terminated = terminate_instances(ec2, cluster_name, deadline, sleep)
    templates = delete_launch_templates(ec2, cluster_name)
    profiles = delete_instance_profiles(iam, cluster_name, node_role_name)
    enis = delete_enis(ec2, cluster_name, subnet_ids, deadline, sleep)
    volumes = delete_volumes(ec2, volume_tag_key, cluster_name, deadline, sleep) if volume_tag_key else 0
    target_groups = delete_target_groups(elbv2, cluster_name, deadline, sleep)
    security_groups = delete_service_security_groups(ec2, cluster_name, subnet_ids, deadline, sleep)
    return {
        "instances": terminated,
        "launch_templates": templates,
        "instance_profiles": profiles,
        "network_interfaces": enis,
        "volumes": volumes,
        "load_balancers": load_balancers,
        "classic_load_balancers": classic_load_balancers,
        "target_groups": target_groups,
        "security_groups": security_groups,
    }


def _paginate(client, operation: str, key: str, **kwargs) -> Iterable[dict]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def cluster_instances(ec2, cluster_name: str) -> list[str]:
    found: set[str] = set()
    for cluster_filter in (
        {"Name": f"tag:{owned_key(cluster_name)}", "Values": [CLUSTER_OWNED_TAG_VALUE]},
        {"Name": f"tag:{EKS_CLUSTER_NAME_TAG_KEY}", "Values": [cluster_name]},
    ):
        filters = [
            cluster_filter,
            {"Name": "tag-key", "Values": [NODEPOOL_TAG_KEY]},
            {"Name": "instance-state-name", "Values": LIVE_STATES},
        ]
        for reservation in _paginate(ec2, "describe_instances", "Reservations", Filters=filters):
            found.update(instance["InstanceId"] for instance in reservation["Instances"])
    return sorted(found)


def terminate_instances(ec2, cluster_name: str, deadline: float, sleep) -> int:
    instance_ids = cluster_instances(ec2, cluster_name)
    if not instance_ids:
        return 0
    for start in range(0, len(instance_ids), 500):  # TerminateInstances takes up to 1000 ids
        ec2.terminate_instances(InstanceIds=instance_ids[start:start + 500])
    while True:
        remaining = [i for i in cluster_instances(ec2, cluster_name) if i in instance_ids]
        if not remaining:
            return len(instance_ids)
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"instances of cluster {cluster_name} still shutting down: "
                f"{', '.join(remaining)}; retry the stack delete in a few minutes"
            )
        sleep(POLL_SECONDS)


def delete_launch_templates(ec2, cluster_name: str) -> int:
    # As Karpenter's own DeleteAll: this cluster's name AND an EC2NodeClass. The second filter
    # keeps EKS managed node group (and hand-made) templates of the cluster out.
    filters = [
        {"Name": f"tag:{EKS_CLUSTER_NAME_TAG_KEY}", "Values": [cluster_name]},
        {"Name": "tag-key", "Values": [NODECLASS_TAG_KEY]},
    ]
    deleted = 0
    for template in list(_paginate(ec2, "describe_launch_templates", "LaunchTemplates", Filters=filters)):
        tags = {tag["Key"]: tag["Value"] for tag in template.get("Tags", [])}
        if tags.get(EKS_CLUSTER_NAME_TAG_KEY) != cluster_name or NODECLASS_TAG_KEY not in tags:
            continue  # the filters are the contract; this guards against a lax implementation
        try:
            ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
            deleted += 1
        except ClientError as err:
            if _code(err) not in ("InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException"):
                raise
    return deleted


def delete_instance_profiles(iam, cluster_name: str, node_role_name: str) -> int:
    deleted = 0
    owned = owned_key(cluster_name)
    for profile in list(_paginate(iam, "list_instance_profiles", "InstanceProfiles")):
        roles = [role["RoleName"] for role in profile.get("Roles", [])]
        # Cheap filter first (Karpenter's profiles hold our node role), then the tag decides.
        if node_role_name not in roles:
            continue
        name = profile["InstanceProfileName"]
        detail = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        tags = {tag["Key"]: tag["Value"] for tag in detail.get("Tags", [])}
        if tags.get(owned) != CLUSTER_OWNED_TAG_VALUE:
            continue
        try:
            for role in roles:
                iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
            iam.delete_instance_profile(InstanceProfileName=name)
            deleted += 1
        except ClientError as err:
            if _code(err) != "NoSuchEntity":
                raise
    return deleted


def _cluster_enis(ec2, cluster_name: str, subnet_ids: list[str], status: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for tag_filter in (
        {"Name": f"tag:{owned_key(cluster_name)}", "Values": [CLUSTER_OWNED_TAG_VALUE]},
        {"Name": f"tag:{VPC_CNI_CLUSTER_TAG_KEY}", "Values": [cluster_name]},
    ):
        filters = [
            tag_filter,
            {"Name": "subnet-id", "Values": subnet_ids},
            {"Name": "status", "Values": status},
        ]
        for eni in _paginate(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters):
            found[eni["NetworkInterfaceId"]] = eni["Status"]
    return found


def delete_enis(ec2, cluster_name: str, subnet_ids: list[str], deadline: float, sleep) -> int:
    if not subnet_ids:
        return 0
    deleted = 0
    while True:
        for eni_id in _cluster_enis(ec2, cluster_name, subnet_ids, ["available"]):
            try:
                ec2.delete_network_interface(NetworkInterfaceId=eni_id)
                deleted += 1
            except ClientError as err:
                if _code(err) not in ("InvalidNetworkInterfaceID.NotFound", "InvalidNetworkInterface.InUse"):
                    raise
        # ENIs of just-terminated instances detach a little after the instance is gone.
        detaching = _cluster_enis(ec2, cluster_name, subnet_ids, ["detaching"])
        if not detaching or time.monotonic() >= deadline:
            return deleted
        sleep(POLL_SECONDS)


def _cluster_volumes(ec2, tag_key: str, cluster_name: str, status: list[str]) -> list[str]:
    found: set[str] = set()
    for tag_filters in (
        # The EBS CSI driver's volumes (extraVolumeTags).
        [{"Name": f"tag:{tag_key}", "Values": [cluster_name]}],
        # Karpenter's node volumes (CreateFleet tags them like the instance).
        [
            {"Name": f"tag:{EKS_CLUSTER_NAME_TAG_KEY}", "Values": [cluster_name]},
            {"Name": "tag-key", "Values": [NODEPOOL_TAG_KEY]},
        ],
    ):
        filters = [*tag_filters, {"Name": "status", "Values": status}]
        found.update(v["VolumeId"] for v in _paginate(ec2, "describe_volumes", "Volumes", Filters=filters))
    return sorted(found)


def delete_volumes(ec2, tag_key: str, cluster_name: str, deadline: float, sleep) -> int:
    # Volumes of just-terminated nodes take a little while to detach; waiting for them is
    # bounded so a volume that never detaches costs minutes, not the whole Lambda budget.
    deadline = min(deadline, time.monotonic() + VOLUME_WAIT_SECONDS)
    deleted = 0
    while True:
        for volume_id in _cluster_volumes(ec2, tag_key, cluster_name, ["available"]):
            try:
                ec2.delete_volume(VolumeId=volume_id)
                deleted += 1
            except ClientError as err:
                if _code(err) not in ("InvalidVolume.NotFound", "VolumeInUse"):
                    raise
        attached = _cluster_volumes(ec2, tag_key, cluster_name, ["in-use"])
        if not attached:
            return deleted
        if time.monotonic() >= deadline:
            LOG.warning("volumes of %s still attached, left in place: %s", cluster_name, attached)
            return deleted
        sleep(POLL_SECONDS)


def service_tagged(kind: str, tags: dict[str, str], cluster_name: str) -> bool:
    """Whether tags are the ones the service controller puts on a `kind` of this cluster."""
    for key, value in SERVICE_CONTROLLER_TAGS[kind].items():
        key = key.format(cluster=cluster_name)
        if key not in tags or (value is not None and tags[key] != value.format(cluster=cluster_name)):
            return False
    return True


def _tags_of(client, ids: list[str], id_param: str, id_key: str) -> dict[str, dict[str, str]]:
    """Tags of ELB resources (DescribeTags takes at most 20 per call; ELB has no tag filter)."""
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), 20):
        try:
            response = client.describe_tags(**{id_param: ids[start:start + 20]})
        except ClientError as err:
            # Deleted between the listing and this call: list one by one, skipping the gone.
            if _code(err) not in ("LoadBalancerNotFound", "TargetGroupNotFound", "AccessPointNotFound"):
                raise
            for one in ids[start:start + 20]:
                found.update(_tags_of_one(client, one, id_param, id_key))
            continue
        for description in response.get("TagDescriptions", []):
            found[description[id_key]] = {t["Key"]: t.get("Value", "") for t in description.get("Tags", [])}
    return found


def _tags_of_one(client, one: str, id_param: str, id_key: str) -> dict[str, dict[str, str]]:
    try:
        response = client.describe_tags(**{id_param: [one]})
    except ClientError as err:
        if _code(err) in ("LoadBalancerNotFound", "TargetGroupNotFound", "AccessPointNotFound"):
            return {}
        raise
    return {
        d[id_key]: {t["Key"]: t.get("Value", "") for t in d.get("Tags", [])}
        for d in response.get("TagDescriptions", [])
    }


def service_load_balancers(elbv2, cluster_name: str) -> list[str]:
    arns = [lb["LoadBalancerArn"] for lb in _paginate(elbv2, "describe_load_balancers", "LoadBalancers")]
    tags = _tags_of(elbv2, arns, "ResourceArns", "ResourceArn")
    return sorted(a for a in arns if service_tagged("load-balancer", tags.get(a, {}), cluster_name))


def delete_load_balancers(elbv2, cluster_name: str) -> int:
    deleted = 0
    for arn in service_load_balancers(elbv2, cluster_name):
        try:
            elbv2.delete_load_balancer(LoadBalancerArn=arn)  # also deletes its listeners
            deleted += 1
        except ClientError as err:
            if _code(err) != "LoadBalancerNotFound":
                raise
    return deleted


def service_classic_load_balancers(elb, cluster_name: str) -> list[str]:
    names = [
        lb["LoadBalancerName"]
        for lb in _paginate(elb, "describe_load_balancers", "LoadBalancerDescriptions")
    ]
    tags = _tags_of(elb, names, "LoadBalancerNames", "LoadBalancerName")
    return sorted(n for n in names if service_tagged("classic-load-balancer", tags.get(n, {}), cluster_name))


def delete_classic_load_balancers(elb, cluster_name: str) -> int:
    names = service_classic_load_balancers(elb, cluster_name)
    for name in names:
        elb.delete_load_balancer(LoadBalancerName=name)  # succeeds if it is already gone
    return len(names)


def service_target_groups(elbv2, cluster_name: str) -> list[str]:
    arns = [tg["TargetGroupArn"] for tg in _paginate(elbv2, "describe_target_groups", "TargetGroups")]
    tags = _tags_of(elbv2, arns, "ResourceArns", "ResourceArn")
    return sorted(a for a in arns if service_tagged("target-group", tags.get(a, {}), cluster_name))


def delete_target_groups(elbv2, cluster_name: str, deadline: float, sleep) -> int:
    # A target group is in use until its load balancer's listeners are gone; that is quick,
    # but bounded like the other waits. Target groups hold no ENIs and block nothing.
    deadline = min(deadline, time.monotonic() + LB_ENI_WAIT_SECONDS)
    deleted = 0
    while True:
        in_use = []
        for arn in service_target_groups(elbv2, cluster_name):
            try:
                elbv2.delete_target_group(TargetGroupArn=arn)
                deleted += 1
            except ClientError as err:
                if _code(err) == "ResourceInUse":
                    in_use.append(arn)
                elif _code(err) != "TargetGroupNotFound":
                    raise
        if not in_use:
            return deleted
        if time.monotonic() >= deadline:
            LOG.warning("target groups of %s still in use, left in place: %s", cluster_name, in_use)
            return deleted
        sleep(POLL_SECONDS)


def cluster_vpcs(ec2, subnet_ids: list[str]) -> list[str]:
    if not subnet_ids:
        return []
    subnets = _paginate(ec2, "describe_subnets", "Subnets", SubnetIds=subnet_ids)
    return sorted({subnet["VpcId"] for subnet in subnets})


def service_security_groups(ec2, cluster_name: str, vpc_ids: list[str]) -> list[str]:
    if not vpc_ids:
        return []
    filters = [
        {"Name": "vpc-id", "Values": vpc_ids},
        {
            "Name": f"tag:{SERVICE_CLUSTER_TAG_KEY.format(cluster=cluster_name)}",
            "Values": [SERVICE_OWNED_VALUE],
        },
    ]
    found = []
    for group in _paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=filters):
        tags = {tag["Key"]: tag["Value"] for tag in group.get("Tags", [])}
        # The filters are the contract; the name prefix keeps the EKS cluster security group
        # (same tag, named eks-cluster-sg-...) and anything else the cluster tags out.
        named = group["GroupName"].startswith(tuple(SERVICE_SG_NAME_PREFIXES.values()))
        if named and group["VpcId"] in vpc_ids and service_tagged("security-group", tags, cluster_name):
            found.append(group["GroupId"])
    return sorted(found)


def revoke_references(ec2, group_ids: list[str], vpc_ids: list[str]) -> int:
    """Revoke rules of other groups that name one of group_ids (they block its deletion)."""
    revoked = 0
    doomed = set(group_ids)
    for direction, filter_name, revoke in (
        ("IpPermissions", "ip-permission.group-id", ec2.revoke_security_group_ingress),
        ("IpPermissionsEgress", "egress.ip-permission.group-id", ec2.revoke_security_group_egress),
    ):
        filters = [{"Name": "vpc-id", "Values": vpc_ids}, {"Name": filter_name, "Values": group_ids}]
        for group in list(_paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=filters)):
            permissions = []
            for permission in group.get(direction, []):
                pairs = [
                    p for p in permission.get("UserIdGroupPairs", [])
                    if p.get("GroupId") in doomed and p.get("GroupId") != group["GroupId"]
                ]
                if pairs:
                    kept = {k: v for k, v in permission.items() if k in ("IpProtocol", "FromPort", "ToPort")}
                    kept["UserIdGroupPairs"] = [{"GroupId": p["GroupId"]} for p in pairs]
                    permissions.append(kept)
            if not permissions:
                continue
            try:
                revoke(GroupId=group["GroupId"], IpPermissions=permissions)
                revoked += len(permissions)
            except ClientError as err:
                # Not ours to change (not tagged for this cluster): the delete below reports it.
                if _code(err) not in (
                    "UnauthorizedOperation", "InvalidPermission.NotFound", "InvalidGroup.NotFound"
                ):
                    raise
                LOG.warning("could not revoke rules of %s naming %s: %s", group["GroupId"], group_ids, err)
    return revoked


def delete_service_security_groups(
    ec2, cluster_name: str, subnet_ids: list[str], deadline: float, sleep
) -> int:
    vpc_ids = cluster_vpcs(ec2, subnet_ids)
    group_ids = service_security_groups(ec2, cluster_name, vpc_ids)
    if not group_ids:
        return 0
    revoke_references(ec2, group_ids, vpc_ids)
    # The deleted load balancers' ENIs leave their groups a few minutes after the delete;
    # a group is deleted once none is left in it. Waiting is bounded.
    deadline = min(deadline, time.monotonic() + LB_ENI_WAIT_SECONDS)
    deleted = 0
    while True:
        enis = _enis_in_groups(ec2, group_ids)
        busy = {group for groups in enis.values() for group in groups}
        in_use = [g for g in group_ids if g in busy]
        for group_id in (g for g in group_ids if g not in busy):
            try:
                ec2.delete_security_group(GroupId=group_id)
                deleted += 1
            except ClientError as err:
                if _code(err) == "DependencyViolation":
                    in_use.append(group_id)
                elif _code(err) != "InvalidGroup.NotFound":
                    raise
        if not in_use:
            return deleted
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"security groups of cluster {cluster_name}'s load balancers still in use: "
                f"{', '.join(sorted(in_use))} (network interfaces: {', '.join(sorted(enis)) or 'none'}); "
                "retry the stack delete in a few minutes"
            )
        group_ids = sorted(in_use)
        sleep(POLL_SECONDS)


def _enis_in_groups(ec2, group_ids: list[str]) -> dict[str, list[str]]:
    """ENI id -> the ones of group_ids it is in."""
    filters = [{"Name": "group-id", "Values": group_ids}]
    return {
        eni["NetworkInterfaceId"]: [g["GroupId"] for g in eni.get("Groups", []) if g["GroupId"] in group_ids]
        for eni in _paginate(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters)
    }


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")
