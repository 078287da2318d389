#!/usr/bin/env python3
"""PyJWT verifies both identity headers: the standard JWT with the JWKS (aud, iss, exp, kid), and
ALB's padded x-amzn-oidc-data with the PEM (PyJWT tolerates the padding).

usage: verify_jwt.py JWT JWKS_JSON AUDIENCE ISSUER ALB_HEADER PEM_FILE
"""
import json
import sys

import jwt


def main() -> int:
    token, jwks, aud, iss, alb, pem_file = sys.argv[1:7]
    keys = jwt.PyJWKSet.from_json(jwks)
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=aud, issuer=iss, options={"require": ["exp", "iat", "sub"]})
    with open(pem_file) as f:
        pem = f.read()
    alb_claims = jwt.decode(alb, pem, algorithms=["ES256"], options={"verify_aud": False})
    assert alb_claims["sub"] == claims["sub"], (alb_claims, claims)
    print(f"pyjwt verified sub={claims['sub']} aud={claims['aud']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
