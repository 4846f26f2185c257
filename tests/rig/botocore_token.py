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


def signer_for(service, signing_name, region, credentials):
    events = botocore.session.get_session().get_component("event_emitter")
    return RequestSigner(ServiceId(service), region, signing_name, "v4", credentials, events)


def elasticache_token(credentials, region, cache_name, query):
    """AWS's documented recipe: GET https://<cache>/?<query>, presigned, no scheme."""
    signer = signer_for("elasticache", "elasticache", region, credentials)
    url = f"https://{cache_name.lower()}/?{urlencode(query)}"
    signed = signer.generate_presigned_url(
        {"method": "GET", "url": url, "body": {}, "headers": {}, "url_path": "/", "context": {}},
        operation_name="connect",
        expires_in=900,
        region_name=region,
    )
    return signed[len("https://"):]


def rds_token(credentials, region, host, port, user):
    """botocore's generate_db_auth_token, without a client."""
    from botocore.awsrequest import prepare_request_dict

    signer = signer_for("rds", "rds-db", region, credentials)
    request = {
        "url_path": "/",
        "query_string": "",
        "headers": {},
        "body": {"Action": "connect", "DBUser": user},
        "method": "GET",
        "context": {},
    }
    scheme = "https://"
    prepare_request_dict(request, f"{scheme}{host}:{port}")
    url = signer.generate_presigned_url(
        request, operation_name="connect", expires_in=900, region_name=region, signing_name="rds-db"
    )
    return url[len(scheme):]


def fix_clock(at):
    """Sign at `at` (naive UTC): botocore >= 1.32 asks get_current_datetime."""
    botocore.auth.get_current_datetime = lambda *args, **kwargs: at


if __name__ == "__main__":
    spec = json.load(sys.stdin)
    fix_clock(
        datetime.datetime.fromtimestamp(spec["epoch"], datetime.timezone.utc).replace(tzinfo=None)
    )
    credentials = Credentials(spec["access_key"], spec["secret_key"], spec["token"])
    region = spec["region"]
    if "rds" in spec:
        rds = spec["rds"]
        print(rds_token(credentials, region, rds["host"], rds["port"], rds["user"]))
    else:
        cache = spec["elasticache"]
        query = {"Action": "connect", "User": cache["user"]}
        if cache["serverless"]:
            query["ResourceType"] = "ServerlessCache"
        print(elasticache_token(credentials, region, cache["cache_name"], query))
