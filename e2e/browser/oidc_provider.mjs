// A real OpenID Provider that is not ours: the npm package `oidc-provider` (panva), with its
// development login and consent pages. Registers one confidential client for a Portcullis listener.
// Access tokens live 4 s so the balancer must refresh them.
//
// With a key file, the provider also sends OIDC Back-Channel Logout 1.0 tokens to the balancer's
// /oauth2/backchannel-logout when a session ends, and writes its private signing key (JWK) to that
// file, so a test can sign hostile logout tokens with the provider's real key.
//
// usage: node oidc_provider.mjs <load balancer https port> [<key file>]
//        (prints the provider's port; runs until stdin closes)
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { exportJWK, generateKeyPair } from "jose";
import Provider from "oidc-provider";

const lbPort = process.argv[2];
const lb = `https://localhost:${lbPort}`;
const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const issuer = `http://localhost:${port}`;
const keyFile = process.argv[3];

let backchannel = {};
let keys = {};
if (keyFile) {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "bcl-test-key", alg: "RS256", use: "sig" };
  fs.writeFileSync(keyFile, JSON.stringify(jwk));
  keys = { jwks: { keys: [jwk] } };
  backchannel = {
    backchannel_logout_uri: `${lb}/oauth2/backchannel-logout`,
    backchannel_logout_session_required: true,
  };
}

// The balancer's certificate is self-signed, and it listens on loopback (which the provider's
// own fetch refuses as a special-use address): the logout POST goes through node:https here.
function postInsecure(url, options) {
  return new Promise((resolve, reject) => {
    const headers = Object.fromEntries(new Headers(options.headers));
    const req = https.request(url, { method: options.method, headers, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, headers: new Headers() }));
    });
    req.on("error", reject);
    req.end(options.body === undefined ? undefined : String(options.body));
  });
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: "portcullis",
    client_secret: "oidc-provider-client-secret-0123456789",
    redirect_uris: [`${lb}/oauth2/idpresponse`],
    post_logout_redirect_uris: [`${lb}/signed-out`],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    ...backchannel,
  }],
  ...keys,
  cookies: { keys: ["portcullis-interop-cookie-key-0123456789"] },
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@op.example`, email_verified: true }),
  }),
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: Boolean(keyFile) },
  },
  ...(keyFile ? { fetch: postInsecure } : {}),
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed("refresh_token"),
  ttl: { AccessToken: 4, IdToken: 3600, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600 },
  pkce: { required: () => false },
});
provider.on("server_error", (ctx, err) => console.error("oidc-provider error:", err));
provider.on("backchannel.error", (ctx, err) => console.error("oidc-provider back-channel logout failed:", err.message));
server.on("request", provider.callback());
console.log(port);
process.stdin.resume();
process.stdin.on("end", () => { server.close(); process.exit(0); });
