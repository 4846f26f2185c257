#!/usr/bin/env python3
"""A stand-in for IAM in front of the offline AWS: forwards every request to
moto unchanged, except the actions it is told to refuse, which get the
documented error answers (EC2: 403 UnauthorizedOperation; STS: 403
AccessDenied). moto does not evaluate IAM policies by default; this is how
the tests see what vpc-probe does with a role that cannot be assumed or a
describe the policy leaves out. Loopback only.

    aws_deny.py PORT UPSTREAM ACTION[,ACTION...]
"""
import sys

from forwarding import Forwarding, serve

PORT, UPSTREAM, DENIED = int(sys.argv[1]), sys.argv[2], set(sys.argv[3].split(","))

EC2 = ("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not "
       "authorized to perform this operation. User: arn:aws:sts::222222222222:assumed-role/"
       "vpc-probe-read/vpc-probe is not authorized to perform: ec2:{action}</Message></Error>"
       "</Errors><RequestID>deny</RequestID></Response>")
STS = ("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
       "arn:aws:iam::123456789012:user/probe is not authorized to perform: sts:AssumeRole on "
       "resource: {role}</Message></Error><RequestId>deny</RequestId></ErrorResponse>")


class Handler(Forwarding):
    UPSTREAM = UPSTREAM

    def handle_form(self, action, form, body):
        if action not in DENIED:
            return None
        if action == "AssumeRole":
            return 403, STS.format(role=form.get("RoleArn", [""])[0]).encode()
        return 403, EC2.format(action=action).encode()


serve(PORT, Handler)
