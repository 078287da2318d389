// Node verifies both identity headers: `jose` and `jsonwebtoken` the standard JWT with the JWKS,
// and `jose` ALB's padded x-amzn-oidc-data with the PEM.
// usage: node verify_jwt.mjs '{"jwt":"...","jwks":{...},"aud":"...","iss":"...","alb":"...","pem":"..."}'
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import * as jose from "jose";
import jsonwebtoken from "jsonwebtoken";

const cfg = JSON.parse(process.argv[2]);
const { payload } = await jose.jwtVerify(cfg.jwt, jose.createLocalJWKSet(cfg.jwks), { audience: cfg.aud, issuer: cfg.iss, algorithms: ["ES256"] });
const { kid } = jose.decodeProtectedHeader(cfg.jwt);
const jwk = cfg.jwks.keys.find((k) => k.kid === kid);
const viaJsonwebtoken = jsonwebtoken.verify(cfg.jwt, createPublicKey({ key: jwk, format: "jwk" }), { audience: cfg.aud, issuer: cfg.iss, algorithms: ["ES256"] });
assert.equal(viaJsonwebtoken.sub, payload.sub);
const alb = await jose.compactVerify(cfg.alb, await jose.importSPKI(cfg.pem, "ES256"));
assert.equal(JSON.parse(new TextDecoder().decode(alb.payload)).sub, payload.sub);
console.log(`node jose+jsonwebtoken verified sub=${payload.sub}`);
