// An external OpenID Provider for user-pool federation tests: the npm package `oidc-provider`
// (panva, not ours) with its development login and consent pages. One confidential client, `pool`,
// whose only redirect URI is the user pool's `/oauth2/idpresponse` given as the first argument.
// Any login name signs in; its claims are sub = the name, email = <name>@<label>.example, and
// whatever a test set with `POST /_test/claims/<name>` (JSON object merged into the claims), so a
// test can change a user's attributes between two sign-ins.
//
// usage: node federation_provider.mjs <redirect URI> [label]   (prints its port; runs until stdin closes)
import http from "node:http";
import Provider from "oidc-provider";

const redirectUri = process.argv[2];
const label = process.argv[3] || "partner";
if (!redirectUri) {
  console.error("usage: node federation_provider.mjs <redirect URI> [label]");
  process.exit(2);
}
const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const issuer = `http://localhost:${port}`;
const extra = new Map();

const provider = new Provider(issuer, {
  clients: [{
    client_id: "pool",
    client_secret: `${label}-client-secret-0123456789`,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_post",
  }],
  cookies: { keys: [`${label}-cookie-key-0123456789abcdef`] },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["given_name", "nickname", "name"],
  },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      email: `${id}@${label}.example`,
      email_verified: true,
      given_name: id,
      ...(extra.get(id) || {}),
    }),
  }),
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});
provider.on("server_error", (ctx, err) => console.error("oidc-provider error:", err));
const callback = provider.callback();
server.on("request", (req, res) => {
  const m = req.url.match(/^\/_test\/claims\/([^/?]+)$/);
  if (req.method === "POST" && m) {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => {
      const id = decodeURIComponent(m[1]);
      extra.set(id, { ...(extra.get(id) || {}), ...JSON.parse(body) });
      res.writeHead(204).end();
    });
    return;
  }
  callback(req, res);
});
console.log(port);
process.stdin.resume();
process.stdin.on("end", () => { server.close(); process.exit(0); });
