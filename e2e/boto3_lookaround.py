"""The look-around a script does with the AWS SDK for Python (boto3) against a Portcullis process:
list the user pools (paginated by boto3's own paginator), then describe each one, its domain, its
MFA configuration and its signing certificate, all parsed by botocore against Cognito's model.

Usage: boto3_lookaround.py <one pool's endpoint URL> <access key id> <secret access key>

Prints one JSON object with what it saw; exits non-zero on the first surprise.
"""

import base64
import json
import sys
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

endpoint, key_id, secret = sys.argv[1:4]


def client(validate=True):
    return boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate),
    )


idp = client()
seen = {"pools": [], "pages": 0, "errors": {}}

# boto3's paginator follows NextToken; a page of one makes it follow every token.
for page in idp.get_paginator("list_user_pools").paginate(PaginationConfig={"PageSize": 1}):
    seen["pages"] += 1
    for summary in page["UserPools"]:
        pool_id = summary["Id"]
        described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        assert described["Id"] == pool_id and described["Name"] == summary["Name"], described
        assert described["CreationDate"] == summary["CreationDate"], (described, summary)
        domain = described["Domain"]
        d = idp.describe_user_pool_domain(Domain=domain)["DomainDescription"]
        assert d["UserPoolId"] == pool_id and d["Status"] == "ACTIVE", d
        mfa = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
        mfa.pop("ResponseMetadata", None)
        der = base64.b64decode(idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"])
        again = base64.b64decode(idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"])
        assert der == again, "the certificate is stable"
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        # The certificate holds a key the pool's JWKS publishes (the one signing ID tokens).
        jwks_url = f"http://{domain}/{pool_id}/.well-known/jwks.json"
        jwks = json.load(urllib.request.urlopen(jwks_url))

        def number(b64):
            return int.from_bytes(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)), "big")

        numbers = key.public_numbers()
        assert any(number(k["n"]) == numbers.n and number(k["e"]) == numbers.e
                   for k in jwks["keys"]), "the certificate's key is in the JWKS"
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                   cert.signature_hash_algorithm)
        seen["pools"].append({
            "summary": summary,
            "described": described,
            "domain": d,
            "mfa": mfa,
            "certificate_subject": cert.subject.rfc4514_string(),
            "certificate_days": (cert.not_valid_after_utc - cert.not_valid_before_utc).days,
        })

# Server-side validation, past botocore's own checks.
raw = client(validate=False)


def error_of(call, **kwargs):
    try:
        getattr(raw, call)(**kwargs)
    except ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"]]
    return None


seen["errors"]["no_max_results"] = error_of("list_user_pools")
seen["errors"]["max_results_61"] = error_of("list_user_pools", MaxResults=61)
seen["errors"]["max_results_0"] = error_of("list_user_pools", MaxResults=0)
seen["errors"]["other_key_pool"] = error_of("describe_user_pool", UserPoolId="us-east-1_Other999")
seen["errors"]["no_domain"] = error_of("describe_user_pool_domain")
unknown = raw.describe_user_pool_domain(Domain="no-such-domain")
seen["unknown_domain"] = unknown["DomainDescription"]
print(json.dumps(seen, default=str))
