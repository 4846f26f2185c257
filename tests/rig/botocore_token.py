"""The reference IAM tokens, from botocore's own signer with a fixed clock.

Reads one JSON object on stdin: access_key, secret_key, token (or null),
region, epoch (seconds), and the resource: {"rds": {"host", "port", "user"}}
or {"elasticache": {"cache_name", "user", "serverless"}}. Prints the token.

RDS: botocore's generate_db_auth_token, as the AWS SDK ships it.
ElastiCache: AWS's documented recipe (the ElastiCache user guide's Python
sample): a RequestSigner for service "elasticache" presigning
GET https://<cache name>/?Action=connect&User=<user>[&ResourceType=ServerlessCache],
900 s, the scheme stripped.
"""

import datetime
import json
import sys
from urllib.parse import urlencode

import botocore.auth
import botocore.session
from botocore.credentials import Credentials
from botocore.model import ServiceId
from botocore.signers import RequestSigner

spec = json.load(sys.stdin)
fixed = datetime.datetime.fromtimestamp(spec["epoch"], datetime.timezone.utc).replace(tzinfo=None)
# botocore >= 1.32 asks get_current_datetime; older ones datetime.utcnow.
botocore.auth.get_current_datetime = lambda *args, **kwargs: fixed

credentials = Credentials(spec["access_key"], spec["secret_key"], spec["token"])
region = spec["region"]
session = botocore.session.get_session()
events = session.get_component("event_emitter")

if "rds" in spec:
    rds = spec["rds"]
    signer = RequestSigner(ServiceId("rds"), region, "rds-db", "v4", credentials, events)
    request = {
        "url_path": "/",
        "query_string": "",
        "headers": {},
        "body": {"Action": "connect", "DBUser": rds["user"]},
        "method": "GET",
        "context": {},
    }
    from botocore.awsrequest import prepare_request_dict

    scheme = "https://"
    prepare_request_dict(request, f"{scheme}{rds['host']}:{rds['port']}")
    url = signer.generate_presigned_url(
        request, operation_name="connect", expires_in=900, region_name=region, signing_name="rds-db"
    )
    print(url[len(scheme):])
else:
    cache = spec["elasticache"]
    signer = RequestSigner(
        ServiceId("elasticache"), region, "elasticache", "v4", credentials, events
    )
    query = {"Action": "connect", "User": cache["user"]}
    if cache["serverless"]:
        query["ResourceType"] = "ServerlessCache"
    url = f"https://{cache['cache_name'].lower()}/?{urlencode(query)}"
    signed = signer.generate_presigned_url(
        {"method": "GET", "url": url, "body": {}, "headers": {}, "url_path": "/", "context": {}},
        operation_name="connect",
        expires_in=900,
        region_name=region,
    )
    print(signed[len("https://"):])
