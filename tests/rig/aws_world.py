#!/usr/bin/env python3
"""The offline AWS of the path-evidence tests: builds, in a moto server, the
two accounts that mirror the network-namespace topology (tests/rig/topology.rs,
scripts/topology), then applies one named fault, and prints the ids as JSON.

    aws_world.py ENDPOINT [FAULT]

App account 123456789012 (moto's own): the ECS VPC 10.20.0.0/16, subnet A
10.20.1.0/24 and subnet B 10.20.2.0/24, each with its own route table and the
app NACL, the task's ENI 10.20.1.10 in subnet A with the ecs-tasks group.
Database account 222222222222 (through AssumeRole into the read-only role):
the database VPC 10.0.0.0/16, HAProxy 10.0.1.12, the Patroni nodes 10.0.1.21
and .22, Redis 10.0.2.10, anisette 10.0.3.10, and the private zone
timescale.glimpse.internal associated with the ECS VPC. A peering from the
app account, accepted by the database account, with DNS resolution from the
remote VPC allowed on the database side.

Each fault changes one object, as the fault rows of tests/topology.rs change
one iptables rule or route. Only loopback is ever contacted (the endpoint).
"""
import json
import sys

import boto3

APP = "123456789012"
DB = "222222222222"
ROLE = f"arn:aws:iam::{DB}:role/vpc-probe-read"
REGION = "eu-west-1"


def session(endpoint, credentials=None):
    keys = {"aws_access_key_id": "AKIDAPPACCOUNT", "aws_secret_access_key": "app-secret"}
    if credentials:
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
    s = boto3.session.Session(region_name=REGION, **keys)
    return lambda service: s.client(service, endpoint_url=endpoint)


def tag(ec2, resource, name):
    ec2.create_tags(Resources=[resource], Tags=[{"Key": "Name", "Value": name}])


def vpc(ec2, cidr, name):
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    tag(ec2, vpc_id, name)
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    return vpc_id


def subnet(ec2, vpc_id, cidr, name, table, acl, zone):
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr,
                                  AvailabilityZone=REGION + zone)["Subnet"]["SubnetId"]
    tag(ec2, subnet_id, name)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
    current = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
    )["NetworkAcls"][0]
    association = next(
        a["NetworkAclAssociationId"]
        for a in current["Associations"]
        if a["SubnetId"] == subnet_id
    )
    ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)
    return subnet_id


def open_acl(ec2, vpc_id, name):
    """A NACL allowing all traffic both ways at rule 100, as a default NACL."""
    acl = ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]
    tag(ec2, acl, name)
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=100, Protocol="-1", RuleAction="allow",
            Egress=egress, CidrBlock="0.0.0.0/0",
        )
    return acl


def group(ec2, vpc_id, name, ingress):
    """A security group with `ingress` = [(port, cidr)]; egress: all."""
    sg = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]
    for port, cidr in ingress:
        ec2.authorize_security_group_ingress(
            GroupId=sg,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                            "IpRanges": [{"CidrIp": cidr}]}],
        )
    return sg


def eni(ec2, subnet_id, address, groups, name):
    eni_id = ec2.create_network_interface(
        SubnetId=subnet_id, PrivateIpAddress=address, Groups=groups, Description=name
    )["NetworkInterface"]["NetworkInterfaceId"]
    return eni_id


def table(ec2, vpc_id, name):
    rtb = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    tag(ec2, rtb, name)
    return rtb


def build(endpoint):
    app = session(endpoint)
    assumed = app("sts").assume_role(RoleArn=ROLE, RoleSessionName="world")["Credentials"]
    db = session(endpoint, assumed)
    ec2, dbec2 = app("ec2"), db("ec2")
    ids = {"app_account": APP, "db_account": DB, "role": ROLE, "region": REGION}

    ids["app_vpc"] = vpc(ec2, "10.20.0.0/16", "ecs")
    ids["db_vpc"] = vpc(dbec2, "10.0.0.0/16", "database")
    pcx = ec2.create_vpc_peering_connection(
        VpcId=ids["app_vpc"], PeerVpcId=ids["db_vpc"], PeerOwnerId=DB, PeerRegion=REGION
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    dbec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    dbec2.modify_vpc_peering_connection_options(
        VpcPeeringConnectionId=pcx,
        AccepterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True},
    )
    ids["pcx"] = pcx

    app_acl = open_acl(ec2, ids["app_vpc"], "ecs-subnets")
    ids["app_acl"] = app_acl
    for letter, cidr in (("a", "10.20.1.0/24"), ("b", "10.20.2.0/24")):
        rtb = table(ec2, ids["app_vpc"], f"ecs-{letter}")
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.0.0.0/16",
                         VpcPeeringConnectionId=pcx)
        ids[f"rtb_{letter}"] = rtb
        ids[f"subnet_{letter}"] = subnet(ec2, ids["app_vpc"], cidr, f"ecs-{letter}", rtb, app_acl, letter)
    ids["sg_tasks"] = group(ec2, ids["app_vpc"], "ecs-tasks", [])
    ids["task_eni"] = eni(ec2, ids["subnet_a"], "10.20.1.10", [ids["sg_tasks"]], "task")

    db_acl = open_acl(dbec2, ids["db_vpc"], "database-subnets")
    ids["db_acl"] = db_acl
    db_rtb = table(dbec2, ids["db_vpc"], "database")
    dbec2.create_route(RouteTableId=db_rtb, DestinationCidrBlock="10.20.0.0/16",
                       VpcPeeringConnectionId=pcx)
    ids["rtb_db"] = db_rtb
    for n, zone in ((1, "a"), (2, "b"), (3, "c")):
        ids[f"subnet_db{n}"] = subnet(dbec2, ids["db_vpc"], f"10.0.{n}.0/24", f"db-{n}", db_rtb, db_acl, zone)
    ids["sg_haproxy"] = group(dbec2, ids["db_vpc"], "haproxy",
                              [(5432, "10.20.0.0/16"), (5433, "10.20.0.0/16")])
    ids["sg_patroni"] = group(dbec2, ids["db_vpc"], "patroni",
                              [(5432, "10.0.1.0/24"), (8008, "10.0.1.0/24")])
    ids["sg_redis"] = group(dbec2, ids["db_vpc"], "redis", [(6379, "10.20.0.0/16")])
    ids["sg_anisette"] = group(dbec2, ids["db_vpc"], "anisette", [(6969, "10.20.0.0/16")])
    eni(dbec2, ids["subnet_db1"], "10.0.1.12", [ids["sg_haproxy"]], "haproxy")
    eni(dbec2, ids["subnet_db1"], "10.0.1.21", [ids["sg_patroni"]], "patroni-1")
    eni(dbec2, ids["subnet_db1"], "10.0.1.22", [ids["sg_patroni"]], "patroni-2")
    eni(dbec2, ids["subnet_db2"], "10.0.2.10", [ids["sg_redis"]], "redis")
    eni(dbec2, ids["subnet_db3"], "10.0.3.10", [ids["sg_anisette"]], "anisette")

    r53 = db("route53")
    zone = r53.create_hosted_zone(
        Name="timescale.glimpse.internal", CallerReference="timescale",
        VPC={"VPCRegion": REGION, "VPCId": ids["db_vpc"]},
        HostedZoneConfig={"PrivateZone": True},
    )["HostedZone"]["Id"].split("/")[-1]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": "production-haproxy.timescale.glimpse.internal", "Type": "A", "TTL": 30,
            "ResourceRecords": [{"Value": "10.0.1.12"}]}}]})
    r53.associate_vpc_with_hosted_zone(
        HostedZoneId=zone, VPC={"VPCRegion": REGION, "VPCId": ids["app_vpc"]})
    ids["zone"] = zone
    return ids, app, db


def fault(name, ids, app, db):
    """Apply the fault `name`: one object changed, as in tests/topology.rs."""
    ec2, dbec2 = app("ec2"), db("ec2")
    perm = lambda port, cidr: [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                                "IpRanges": [{"CidrIp": cidr}]}]
    if name == "sg_drops_haproxy":
        dbec2.revoke_security_group_ingress(GroupId=ids["sg_haproxy"], IpPermissions=perm(5432, "10.20.0.0/16"))
    elif name == "redis_sg_missing":
        dbec2.revoke_security_group_ingress(GroupId=ids["sg_redis"], IpPermissions=perm(6379, "10.20.0.0/16"))
    elif name == "sg_egress_missing":
        ec2.revoke_security_group_egress(GroupId=ids["sg_tasks"], IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ec2.authorize_security_group_egress(GroupId=ids["sg_tasks"], IpPermissions=perm(443, "0.0.0.0/0"))
    elif name in ("egress_by_prefix_list", "egress_by_wrong_prefix_list"):
        cidr = "10.0.0.0/16" if name == "egress_by_prefix_list" else "192.0.2.0/24"
        pl = ec2.create_managed_prefix_list(PrefixListName="databases", MaxEntries=5, AddressFamily="IPv4",
                                            Entries=[{"Cidr": cidr}])["PrefixList"]["PrefixListId"]
        ec2.revoke_security_group_egress(GroupId=ids["sg_tasks"], IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ec2.authorize_security_group_egress(GroupId=ids["sg_tasks"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "PrefixListIds": [{"PrefixListId": pl}]}])
        ids["prefix_list"] = pl
    elif name == "route_missing_from_b":
        ec2.delete_route(RouteTableId=ids["rtb_b"], DestinationCidrBlock="10.0.0.0/16")
    elif name == "route_missing_from_a":
        ec2.delete_route(RouteTableId=ids["rtb_a"], DestinationCidrBlock="10.0.0.0/16")
    elif name == "return_route_missing":
        dbec2.delete_route(RouteTableId=ids["rtb_db"], DestinationCidrBlock="10.20.0.0/16")
    elif name == "more_specific_route":
        ec2.create_route(RouteTableId=ids["rtb_a"], DestinationCidrBlock="10.0.1.0/24",
                         GatewayId=ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"])
    elif name == "blackhole_route":
        # A route whose peering is gone: AWS keeps it, in state blackhole.
        old = ec2.create_vpc_peering_connection(
            VpcId=ids["app_vpc"], PeerVpcId=ids["db_vpc"], PeerOwnerId=DB, PeerRegion=REGION
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        dbec2.accept_vpc_peering_connection(VpcPeeringConnectionId=old)
        ec2.replace_route(RouteTableId=ids["rtb_a"], DestinationCidrBlock="10.0.0.0/16",
                          VpcPeeringConnectionId=old)
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=old)
    elif name == "nacl_deny_below_allow":
        ec2.create_network_acl_entry(NetworkAclId=ids["app_acl"], RuleNumber=90, Protocol="6",
                                     RuleAction="deny", Egress=True, CidrBlock="10.0.0.0/16",
                                     PortRange={"From": 5432, "To": 5432})
    elif name == "nacl_drops_returns":
        ec2.create_network_acl_entry(NetworkAclId=ids["app_acl"], RuleNumber=50, Protocol="6",
                                     RuleAction="deny", Egress=False, CidrBlock="0.0.0.0/0",
                                     PortRange={"From": 1024, "To": 65535})
    elif name == "peering_pending":
        pcx = ec2.create_vpc_peering_connection(
            VpcId=ids["app_vpc"], PeerVpcId=ids["db_vpc"], PeerOwnerId=DB, PeerRegion=REGION
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        for rtb in ("rtb_a", "rtb_b"):
            ec2.replace_route(RouteTableId=ids[rtb], DestinationCidrBlock="10.0.0.0/16",
                              VpcPeeringConnectionId=pcx)
        dbec2.replace_route(RouteTableId=ids["rtb_db"], DestinationCidrBlock="10.20.0.0/16",
                            VpcPeeringConnectionId=pcx)
        ids["pcx_pending"] = pcx
    elif name == "peering_deleted":
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=ids["pcx"])
    elif name == "dns_public_ip":
        dbec2.modify_vpc_peering_connection_options(
            VpcPeeringConnectionId=ids["pcx"],
            AccepterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": False})
    elif name == "vpc_dns_off":
        ec2.modify_vpc_attribute(VpcId=ids["app_vpc"], EnableDnsSupport={"Value": False})
    elif name == "zone_not_associated":
        db("route53").disassociate_vpc_from_hosted_zone(
            HostedZoneId=ids["zone"], VPC={"VPCRegion": REGION, "VPCId": ids["app_vpc"]})
    elif name in ("sg_too_wide_patroni_node", "sg_too_wide_patroni_api"):
        port = 5432 if name.endswith("node") else 8008
        dbec2.authorize_security_group_ingress(GroupId=ids["sg_patroni"], IpPermissions=perm(port, "10.20.0.0/16"))
    elif name == "transit_gateway_without_route":
        # Subnet A's route goes to a transit gateway whose route table has
        # no route to the database VPC (that VPC is not even attached).
        tgw = ec2.create_transit_gateway(Description="network")["TransitGateway"]["TransitGatewayId"]
        ec2.create_transit_gateway_vpc_attachment(
            TransitGatewayId=tgw, VpcId=ids["app_vpc"], SubnetIds=[ids["subnet_a"]])
        ec2.replace_route(RouteTableId=ids["rtb_a"], DestinationCidrBlock="10.0.0.0/16",
                          TransitGatewayId=tgw)
        ids["tgw"] = tgw
    elif name.startswith("tgw_"):
        transit(name, ids, app, db)
    elif name.startswith("vpce_"):
        privatelink(name, ids, app, db)
    elif name != "healthy":
        sys.exit(f"unknown fault {name}")


NETWORK = "333333333333"
TGW = "tgw-0e1f2a3b4c5d60001"


def transit(name, ids, app, db):
    """The same two VPCs joined by a transit gateway of a network account,
    shared through RAM, instead of the peering: each subnet routes the
    other VPC to the gateway, each VPC has an attachment associated with
    its own TGW route table, each table has the propagated route to the
    other attachment. Then the fault `name` (tgw_healthy: none). What moto
    cannot hold goes to gaps.json, for tests/rig/aws_gaps.py to answer."""
    ec2, dbec2 = app("ec2"), db("ec2")
    joins = [(ec2, ids["rtb_a"], "10.0.0.0/16"), (ec2, ids["rtb_b"], "10.0.0.0/16"),
             (dbec2, ids["rtb_db"], "10.20.0.0/16")]
    for client, rtb, cidr in joins:
        client.replace_route(RouteTableId=rtb, DestinationCidrBlock=cidr, TransitGatewayId=TGW)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=ids["pcx"])
    ids.update(tgw=TGW, network_account=NETWORK, network_role=f"arn:aws:iam::{NETWORK}:role/vpc-probe-network-read",
               tgw_attach_app="tgw-attach-0a9900000000000a1", tgw_attach_db="tgw-attach-0db00000000000db1",
               tgw_rtb_app="tgw-rtb-0a9900000000000a1", tgw_rtb_db="tgw-rtb-0db00000000000db1")
    app_side = attachment(ids, "app", APP, [ids["subnet_a"], ids["subnet_b"]])
    db_side = attachment(ids, "db", DB, [ids["subnet_db1"], ids["subnet_db2"], ids["subnet_db3"]])
    routes = {ids["tgw_rtb_app"]: [tgw_route("10.0.0.0/16", ids, "db")],
              ids["tgw_rtb_db"]: [tgw_route("10.20.0.0/16", ids, "app")]}
    gateway = {"TransitGatewayId": TGW, "OwnerId": NETWORK, "State": "available",
               "Options": {"SecurityGroupReferencingSupport": "disable",
                           "DefaultRouteTableAssociation": "disable",
                           "DefaultRouteTablePropagation": "disable"}}
    references = {}
    if name == "tgw_subnet_route_missing":
        ec2.delete_route(RouteTableId=ids["rtb_a"], DestinationCidrBlock="10.0.0.0/16")
    elif name == "tgw_no_route":
        routes[ids["tgw_rtb_app"]] = []
    elif name == "tgw_blackhole":
        routes[ids["tgw_rtb_app"]] = [{"DestinationCidrBlock": "10.0.0.0/16", "Type": "static",
                                       "State": "blackhole"}]
    elif name == "tgw_not_associated":
        del app_side[1]["Association"]
    elif name == "tgw_return_route_missing":
        routes[ids["tgw_rtb_db"]] = []
    elif name == "tgw_return_subnet_route_missing":
        dbec2.delete_route(RouteTableId=ids["rtb_db"], DestinationCidrBlock="10.20.0.0/16")
    elif name == "tgw_no_subnet_in_zone":
        app_side[0]["SubnetIds"] = [ids["subnet_b"]]
    elif name == "tgw_sg_reference":
        dbec2.revoke_security_group_ingress(GroupId=ids["sg_haproxy"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}])
        # moto refuses a pair naming another account's group
        # (InvalidGroup.NotFound): the rule names a stand-in of the database
        # account, which aws_gaps.py answers as the app's ecs-tasks group.
        stand_in = group(dbec2, ids["db_vpc"], "stands-for-ecs-tasks", [])
        dbec2.authorize_security_group_ingress(GroupId=ids["sg_haproxy"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "UserIdGroupPairs": [{"GroupId": stand_in}]}])
        references[stand_in] = ids["sg_tasks"]
    elif name != "tgw_healthy":
        sys.exit(f"unknown fault {name}")
    transit_state = {"network": NETWORK, "gateways": [gateway],
                     "vpc_attachments": [app_side[0], db_side[0]], "attachments": [app_side[1], db_side[1]],
                     "route_tables": [{"TransitGatewayRouteTableId": t, "TransitGatewayId": TGW,
                                       "State": "available", "DefaultAssociationRouteTable": False,
                                       "DefaultPropagationRouteTable": False} for t in routes],
                     "routes": routes,
                     "subnet_routes": [[rtb, cidr] for _, rtb, cidr in joins]}
    write_gaps({"transit": transit_state, "group_references": references})


VPCE_FAULTS = ("vpce_healthy", "vpce_pending_acceptance", "vpce_rejected", "vpce_principal_not_allowed",
               "vpce_sg_without_port", "vpce_no_listener", "vpce_targets_unhealthy", "vpce_private_dns_off")
VPCE_NAME = "haproxy.vpce.glimpse.example"


def privatelink(name, ids, app, db):
    """HAProxy offered to the ECS VPC through PrivateLink: in the database
    account an internal NLB in subnet db-1 forwarding 5432 to HAProxy's
    address, behind an endpoint service that requires acceptance and allows
    the app account; in the ECS VPC an interface endpoint in subnet A whose
    interface (10.20.1.50) has a group admitting 5432 from the VPC. Then the
    fault `name` (vpce_healthy: none). What moto cannot hold goes to
    gaps.json, for tests/rig/aws_gaps.py to answer."""
    if name not in VPCE_FAULTS:
        sys.exit(f"unknown fault {name}")
    ec2, dbec2, elb = app("ec2"), db("ec2"), db("elbv2")
    lb = elb.create_load_balancer(Name="haproxy", Subnets=[ids["subnet_db1"]], Type="network",
                                  Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="haproxy", Protocol="TCP", Port=5432, VpcId=ids["db_vpc"],
                                 TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.1.12", "Port": 5432}])
    port = 5433 if name == "vpce_no_listener" else 5432
    elb.create_listener(LoadBalancerArn=lb, Protocol="TCP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    service = dbec2.create_vpc_endpoint_service_configuration(
        NetworkLoadBalancerArns=[lb], AcceptanceRequired=True, PrivateDnsName=VPCE_NAME)["ServiceConfiguration"]
    allowed = "999999999999" if name == "vpce_principal_not_allowed" else APP
    dbec2.modify_vpc_endpoint_service_permissions(
        ServiceId=service["ServiceId"], AddAllowedPrincipals=[f"arn:aws:iam::{allowed}:root"])
    admits = [] if name == "vpce_sg_without_port" else [(5432, "10.20.0.0/16")]
    sg = group(ec2, ids["app_vpc"], "vpce-haproxy", admits)
    private_dns = name != "vpce_private_dns_off"
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=ids["app_vpc"], ServiceName=service["ServiceName"],
        SubnetIds=[ids["subnet_a"]], SecurityGroupIds=[sg],
        PrivateDnsEnabled=private_dns)["VpcEndpoint"]["VpcEndpointId"]
    interface = eni(ec2, ids["subnet_a"], "10.20.1.50", [sg], f"VPC Endpoint Interface {endpoint}")
    state = {"vpce_pending_acceptance": "pendingAcceptance", "vpce_rejected": "rejected"}.get(name, "available")
    ids.update(vpce=endpoint, vpce_svc=service["ServiceId"], nlb=lb, target_group=tg, sg_vpce=sg,
               vpce_interface=interface)
    connection = {"ServiceId": service["ServiceId"], "VpcEndpointId": endpoint, "VpcEndpointOwner": APP,
                  "VpcEndpointState": state}
    unhealthy = {"10.0.1.12": "Target.FailedHealthChecks"} if name == "vpce_targets_unhealthy" else {}
    # What the consumer's DescribeVpcEndpointServices says (moto does not
    # show another account's service to it).
    detail = {"ServiceName": service["ServiceName"], "ServiceId": service["ServiceId"],
              "ServiceType": [{"ServiceType": "Interface"}], "Owner": DB,
              "AvailabilityZones": [REGION + "a"], "AcceptanceRequired": True,
              "PrivateDnsName": VPCE_NAME}
    write_gaps({"privatelink": {"endpoint": endpoint, "state": state, "interface": interface,
                                "private_dns": private_dns, "services": [detail],
                                "connections": [connection], "unhealthy": unhealthy}})


def write_gaps(state):
    """What moto cannot hold, for tests/rig/aws_gaps.py: gaps.json here."""
    with open("gaps.json", "w") as out:
        json.dump(state, out, indent=1)


def attachment(ids, side, owner, subnets):
    """One VPC's attachment as DescribeTransitGatewayVpcAttachments and
    DescribeTransitGatewayAttachments give it (associated with its table)."""
    attachment_id, vpc_id = ids[f"tgw_attach_{side}"], ids[f"{side}_vpc"]
    vpc_view = {"TransitGatewayAttachmentId": attachment_id, "TransitGatewayId": TGW, "VpcId": vpc_id,
                "VpcOwnerId": owner, "State": "available", "SubnetIds": subnets,
                "Options": {"ApplianceModeSupport": "disable", "SecurityGroupReferencingSupport": "disable",
                            "DnsSupport": "enable", "Ipv6Support": "disable"}}
    view = {"TransitGatewayAttachmentId": attachment_id, "TransitGatewayId": TGW,
            "TransitGatewayOwnerId": NETWORK, "ResourceOwnerId": owner, "ResourceType": "vpc",
            "ResourceId": vpc_id, "State": "available",
            "Association": {"TransitGatewayRouteTableId": ids[f"tgw_rtb_{side}"], "State": "associated"}}
    return [vpc_view, view]


def tgw_route(cidr, ids, to):
    """A propagated route to the attachment of `to`."""
    return {"DestinationCidrBlock": cidr, "Type": "propagated", "State": "active",
            "TransitGatewayAttachments": [{"ResourceId": ids[f"{to}_vpc"],
                                           "TransitGatewayAttachmentId": ids[f"tgw_attach_{to}"],
                                           "ResourceType": "vpc"}]}


def main():
    endpoint = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else "healthy"
    ids, app, db = build(endpoint)
    fault(name, ids, app, db)
    json.dump(ids, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
