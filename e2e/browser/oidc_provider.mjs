// A real OpenID Provider that is not ours: the npm package `oidc-provider` (panva), with its
// development login and consent pages. Registers one confidential client for a Portcullis listener.
// Access tokens live 4 s so the balancer must refresh them.
//
// usage: node oidc_provider.mjs <load balancer https port>   (prints the provider's port; runs until stdin closes)
import http from "node:http";
import Provider from "oidc-provider";

const lbPort = process.argv[2];
const lb = `https://localhost:${lbPort}`;
const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const issuer = `http://localhost:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: "portcullis",
    client_secret: "oidc-provider-client-secret-0123456789",
    redirect_uris: [`${lb}/oauth2/idpresponse`],
    post_logout_redirect_uris: [`${lb}/signed-out`],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
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
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed("refresh_token"),
  ttl: { AccessToken: 4, IdToken: 3600, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600 },
  pkce: { required: () => false },
});
provider.on("server_error", (ctx, err) => console.error("oidc-provider error:", err));
server.on("request", provider.callback());
console.log(port);
process.stdin.resume();
process.stdin.on("end", () => { server.close(); process.exit(0); });
