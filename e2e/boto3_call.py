"""One cognito-idp call through boto3 (its JSON protocol and SigV4 signer), for tests.

Usage: boto3_call.py <endpoint URL> <access key id> <secret key> <Operation> '<JSON parameters>'
Prints the response as JSON, or {"error": "<code>"} on a service error.
"""

import json
import sys

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret, op, params = sys.argv[1:6]
client = boto3.client(
    "cognito-idp",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=key_id,
    aws_secret_access_key=secret,
    config=Config(retries={"max_attempts": 1}),
)
method = getattr(client, xform_name(op))
try:
    out = method(**json.loads(params))
    out.pop("ResponseMetadata", None)
    print(json.dumps(out, default=str))
except ClientError as e:
    print(json.dumps({"error": e.response["Error"]["Code"]}))
