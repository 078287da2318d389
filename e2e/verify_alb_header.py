#!/usr/bin/env python3
"""Verify an ALB-format x-amzn-oidc-data header with Python's `cryptography`, following AWS's
documented procedure: decode the header, pin signer and client, fetch the key by kid, verify
ES256 over the *padded* first two segments, check exp.

usage: verify_alb_header.py TOKEN PEM_FILE SIGNER_ARN CLIENT_ID ISSUER
"""
import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64(segment: str) -> bytes:
    # ALB keeps '=' padding; urlsafe_b64decode needs it, so add any that is missing.
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def main() -> int:
    token, pem_file, signer, client, issuer = sys.argv[1:6]
    header_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(b64(header_b64))
    assert header["alg"] == "ES256", header
    assert header["signer"] == signer, f"signer {header['signer']} != {signer}"
    assert header["client"] == client, header
    assert header["iss"] == issuer, header
    with open(pem_file, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    sig = b64(sig_b64)
    assert len(sig) == 64, len(sig)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    payload = json.loads(b64(payload_b64))
    assert payload["exp"] == header["exp"] and payload["iss"] == issuer, payload
    assert header["exp"] > time.time(), "expired"
    print(f"verified sub={payload['sub']} kid={header['kid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
