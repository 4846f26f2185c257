#!/usr/bin/env python3
"""What moto 5.2.5 gets wrong or lacks, answered as AWS documents it, in
front of the offline AWS; every other request goes to moto unchanged.

    aws_gaps.py PORT UPSTREAM STATE_JSON

STATE_JSON (written by aws_world.py, in the field names of botocore's EC2
model) says what the world holds that moto cannot:

- "transit": a transit gateway owned by a network account and shared
  through RAM. moto cannot attach another account's VPC to a gateway,
  returns static routes without their attachments, never shows propagated
  routes, answers 500 to SearchTransitGatewayRoutes with MaxResults, and
  drops the target of a subnet route to a gateway it does not hold. This
  fixture answers the five gateway reads itself and puts the gateway back
  on those subnet routes (DescribeRouteTables). Who sees what follows RAM:
  every account sees the shared gateway and the attachments of its own
  VPCs; only the owner (the network account) sees the route tables.
- "group_references": moto refuses a rule naming another account's group;
  the world names a stand-in, and the rule answers name the group meant.
- "privatelink": moto makes every interface endpoint `available` even when
  the service requires acceptance, gives its interface an address outside
  its subnet with the type `interface`, always calls targets healthy,
  answers 500 to DescribeVpcEndpointConnections, and does not show another
  account's service to DescribeVpcEndpointServices. The world makes the
  endpoint's interface itself (an address in the subnet, the endpoint's
  group); this fixture gives it the type `vpc_endpoint` and puts it on the
  endpoint, says the endpoint's state and private DNS, answers the
  connections and the consumer's view of the service, and the target
  health the world chose.

The caller's account is learned from the traffic: the AssumeRole answers
this fixture forwards map their access keys to the role's account; any
other key is the app account's. Every answer made here is serialized from
botocore's output shape and parsed back with botocore's EC2 parser before
it is sent: a field that would not survive is a 500 naming it, never a
silent gap. Loopback only.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import botocore.parsers
import botocore.session
from forwarding import Forwarding, serve

PORT, UPSTREAM, STATE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
APP = "123456789012"
MODEL = botocore.session.get_session().get_service_model("ec2")
ACCOUNT_OF_KEY = {}
ANSWERED = {
    "DescribeVpcEndpointConnections": "VpcEndpointConnections",
    "DescribeVpcEndpointServices": "ServiceDetails",
    "DescribeTransitGateways": "TransitGateways",
    "DescribeTransitGatewayVpcAttachments": "TransitGatewayVpcAttachments",
    "DescribeTransitGatewayAttachments": "TransitGatewayAttachments",
    "DescribeTransitGatewayRouteTables": "TransitGatewayRouteTables",
    "SearchTransitGatewayRoutes": "Routes",
}


def load():
    """The world's gaps; none when it wrote no gaps.json (a peering world
    read through this fixture, as scripts/bench-aws does to time it)."""
    try:
        with open(STATE) as state:
            return json.load(state)
    except FileNotFoundError:
        return {}


def inner(shape, value):
    """`value` as the EC2 query protocol writes `shape`'s content."""
    if shape.type_name == "structure":
        out = []
        for name, member in shape.members.items():
            if name in value:
                tag = member.serialization.get("name", name[0].lower() + name[1:])
                out.append(f"<{tag}>{inner(member, value[name])}</{tag}>")
        return "".join(out)
    if shape.type_name == "list":
        return "".join(f"<item>{inner(shape.member, v)}</item>" for v in value)
    if shape.type_name == "boolean":
        return "true" if value else "false"
    return escape(str(value))


def document(action, value):
    shape = MODEL.operation_model(action).output_shape
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response '
            f'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>tgw-fixture</requestId>'
            f"{inner(shape, value)}</{action}Response>").encode()
    parsed = botocore.parsers.create_parser("ec2").parse(
        {"body": body, "headers": {}, "status_code": 200}, shape)
    parsed.pop("ResponseMetadata", None)
    if parsed != value:
        raise ValueError(f"{action}: botocore reads back {parsed}, not {value}")
    return body


def filters(form):
    """Filter.N.Name / Filter.N.Value.M, as {name: [values]}."""
    found = {}
    for key, values in form.items():
        match = re.fullmatch(r"Filter\.(\d+)\.Name", key)
        if match:
            n = match.group(1)
            found[values[0]] = [v[0] for k, v in sorted(form.items())
                                if re.fullmatch(rf"Filter\.{n}\.Value\.\d+", k)]
    return found


def answer(action, form, account):
    if action == "DescribeVpcEndpointConnections":
        return connections(form)
    if action == "DescribeVpcEndpointServices":
        return services(form)
    state = load().get("transit")
    if state is None:
        return None
    owner = account == state["network"]
    wanted = filters(form)
    gateways = wanted.get("transit-gateway-id")
    on_gateway = lambda item: gateways is None or item["TransitGatewayId"] in gateways
    if action == "DescribeTransitGateways":
        items = [g for g in state["gateways"] if on_gateway(g)]
    elif action == "DescribeTransitGatewayVpcAttachments":
        items = [a for a in state["vpc_attachments"]
                 if on_gateway(a) and (owner or a["VpcOwnerId"] == account)]
    elif action == "DescribeTransitGatewayAttachments":
        items = [a for a in state["attachments"]
                 if on_gateway(a) and (owner or a["ResourceOwnerId"] == account)]
    elif action == "DescribeTransitGatewayRouteTables":
        items = [t for t in state["route_tables"] if owner and on_gateway(t)]
    else:
        table = form.get("TransitGatewayRouteTableId", [""])[0]
        if not owner or table not in state["routes"]:
            return None
        states = wanted.get("state", ["active", "blackhole"])
        items = [r for r in state["routes"][table] if r["State"] in states]
    value = {ANSWERED[action]: items}
    if action == "SearchTransitGatewayRoutes":
        value["AdditionalRoutesAvailable"] = False
    return document(action, value)


TARGETS = ("gatewayId", "natGatewayId", "transitGatewayId", "vpcPeeringConnectionId",
           "networkInterfaceId", "instanceId", "egressOnlyInternetGatewayId")


def edited(body, change):
    """`body` (an XML answer) after `change(root, tag)`, in its own namespace."""
    namespace = re.search(rb'xmlns="([^"]+)"', body).group(1).decode()
    ET.register_namespace("", namespace)
    root = ET.fromstring(body)
    change(root, lambda name: f"{{{namespace}}}{name}")
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def gateway_routes(root, tag):
    """`transitGatewayId` back on the subnet routes the state lists (moto
    keeps the route and drops its target)."""
    transit = load().get("transit")
    if transit is None:
        return
    wanted = {(rtb, cidr) for rtb, cidr in transit["subnet_routes"]}
    gateway = transit["gateways"][0]["TransitGatewayId"]
    for table in root.iter(tag("item")):
        rtb = table.findtext(tag("routeTableId"))
        for route in table.findall(f"{tag('routeSet')}/{tag('item')}"):
            cidr = route.findtext(tag("destinationCidrBlock"))
            bare = all(route.find(tag(t)) is None for t in TARGETS)
            if (rtb, cidr) in wanted and bare:
                ET.SubElement(route, tag("transitGatewayId")).text = gateway


def endpoint_state(root, tag):
    """The endpoint's state and its interface, as the world chose them."""
    link = load().get("privatelink")
    for item in root.iter(tag("item")) if link else []:
        if item.findtext(tag("vpcEndpointId")) != link["endpoint"]:
            continue
        item.find(tag("state")).text = link["state"]
        dns = item.find(tag("privateDnsEnabled"))
        if dns is not None:
            dns.text = "true" if link.get("private_dns", True) else "false"
        interfaces = item.find(tag("networkInterfaceIdSet"))
        for old in list(interfaces):
            interfaces.remove(old)
        ET.SubElement(interfaces, tag("item")).text = link["interface"]


def endpoint_interface(root, tag):
    """The endpoint's interface has the type `vpc_endpoint`."""
    link = load().get("privatelink")
    for item in root.iter(tag("item")) if link else []:
        if item.findtext(tag("networkInterfaceId")) == link["interface"]:
            kind = item.find(tag("interfaceType"))
            if kind is None:
                kind = ET.SubElement(item, tag("interfaceType"))
            kind.text = "vpc_endpoint"


def target_health(root, tag):
    """The targets the world made unhealthy, with their reason code."""
    link = load().get("privatelink") or {}
    for member in root.iter(tag("member")):
        reason = link.get("unhealthy", {}).get(member.findtext(f"{tag('Target')}/{tag('Id')}") or "")
        health = member.find(tag("TargetHealth"))
        if reason and health is not None:
            for old in list(health):
                health.remove(old)
            ET.SubElement(health, tag("State")).text = "unhealthy"
            ET.SubElement(health, tag("Reason")).text = reason


def connections(form):
    link = load().get("privatelink")
    wanted = filters(form).get("service-id")
    items = [c for c in (link or {}).get("connections", [])
             if wanted is None or c["ServiceId"] in wanted]
    return document("DescribeVpcEndpointConnections", {"VpcEndpointConnections": items})


EDITS = {
    "DescribeRouteTables": gateway_routes,
    "DescribeVpcEndpoints": endpoint_state,
    "DescribeNetworkInterfaces": endpoint_interface,
    "DescribeTargetHealth": target_health,
}


NOT_FOUND = ("<Response><Errors><Error><Code>InvalidRouteTableID.NotFound</Code><Message>"
             "The transitGatewayRouteTable ID '{table}' does not exist</Message></Error></Errors>"
             "<RequestID>tgw-fixture</RequestID></Response>")


def answers(action):
    """Whether this fixture answers `action` for the world it was given."""
    state = load()
    if action.startswith("DescribeVpcEndpoint"):
        return "privatelink" in state
    return "transit" in state


def services(form):
    """The consumer's view of the services the world offers by name."""
    link = load()["privatelink"]
    wanted = [v[0] for k, v in form.items() if k.startswith("ServiceName.")]
    items = [d for d in link["services"] if not wanted or d["ServiceName"] in wanted]
    return document("DescribeVpcEndpointServices", {"ServiceDetails": items})


class Handler(Forwarding):
    UPSTREAM = UPSTREAM

    def handle_form(self, action, form, body):
        key = re.search(r"Credential=([A-Z0-9]+)/", self.headers.get("Authorization", ""))
        account = ACCOUNT_OF_KEY.get(key.group(1) if key else "", APP)
        if action in ANSWERED and answers(action):
            try:
                text = answer(action, form, account)
            except Exception as err:  # a fixture bug: loud, never a silent gap
                return 500, f"aws_gaps.py: {err}".encode()
            if text is None:
                table = form.get("TransitGatewayRouteTableId", [""])[0]
                return 400, NOT_FOUND.format(table=table).encode()
            return 200, text
        status, answer_body = self.upstream(body)
        if status != 200:
            return status, answer_body
        if action in EDITS:
            answer_body = edited(answer_body, EDITS[action])
        if action in ("DescribeSecurityGroupRules", "DescribeSecurityGroups"):
            for stand_in, meant in load().get("group_references", {}).items():
                answer_body = answer_body.replace(stand_in.encode(), meant.encode())
        if action == "AssumeRole":
            learned = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", answer_body)
            role = form.get("RoleArn", [""])[0].split(":")
            if learned and len(role) > 4:
                ACCOUNT_OF_KEY[learned.group(1).decode()] = role[4]
        return status, answer_body


serve(PORT, Handler)
