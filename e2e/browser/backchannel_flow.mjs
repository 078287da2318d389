// OIDC Back-Channel Logout 1.0 against the balancer, with npm `oidc-provider` as the real sender:
// sign in through the provider's pages in Chromium; hostile logout tokens (signed with the
// provider's real key where the signature is not the point) are refused with 400 and the session
// keeps working; then the session ends at the provider, which POSTs its logout token to the
// balancer, and the balancer's next answer for that browser is a new login, not the app.
//
// usage: node backchannel_flow.mjs '{"lb":"https://localhost:P","op":"http://localhost:Q","key":"<jwk file>"}'
import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";
import { SignJWT, generateKeyPair, importJWK } from "jose";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const jwk = JSON.parse(fs.readFileSync(cfg.key, "utf8"));
const key = await importJWK(jwk, "RS256");
const endpoint = `${cfg.lb}/oauth2/backchannel-logout`;
const EVENT = "http://schemas.openid.net/event/backchannel-logout";

// POST to the balancer (self-signed certificate) and return { status, headers, body }.
function post(body, contentType = "application/x-www-form-urlencoded") {
  return new Promise((resolve, reject) => {
    const req = https.request(endpoint, {
      method: "POST", rejectUnauthorized: false,
      headers: { "content-type": contentType, "content-length": Buffer.byteLength(body) },
    }, (res) => {
      let text = "";
      res.on("data", (d) => { text += d; });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const now = () => Math.floor(Date.now() / 1000);
let jtiCounter = 0;
function claims(edit = {}) {
  const c = { iss: cfg.op, aud: "portcullis", iat: now(), jti: `hostile-${++jtiCounter}`,
              sid: "some-other-session", events: { [EVENT]: {} } };
  for (const [k, v] of Object.entries(edit)) {
    if (v === undefined) delete c[k]; else c[k] = v;
  }
  return c;
}
async function sign(c, signingKey = key, kid = jwk.kid) {
  return new SignJWT(c).setProtectedHeader({ alg: "RS256", kid, typ: "logout+jwt" }).sign(signingKey);
}
const form = (token) => new URLSearchParams({ logout_token: token }).toString();
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

async function loginAtProvider(page, user) {
  await page.waitForURL((u) => u.href.startsWith(`${cfg.op}/interaction/`));
  await page.locator("input[name=login]").fill(user);
  await page.locator("input[name=password]").fill("any-password");
  await page.locator("button[type=submit]").first().click();
  await page.waitForURL((u) => !u.href.includes("/login") || u.href.startsWith(cfg.lb));
  if (page.url().startsWith(`${cfg.op}/interaction/`)) {
    await page.locator("button[type=submit]").first().click();
  }
}

const identity = async (page, path) => {
  const r = await page.goto(`${cfg.lb}${path}`);
  assert.equal(r.status(), 200, `${path} answered ${r.status()}`);
  return JSON.parse(await page.locator("body").innerText()).headers["x-amzn-oidc-identity"];
};

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();

  // 1. Sign in through the provider's pages.
  await page.goto(`${cfg.lb}/op/home`);
  await loginAtProvider(page, "bob");
  await page.waitForURL(`${cfg.lb}/op/home`);
  assert.equal(await identity(page, "/op/home"), "bob");

  // 2. Hostile logout tokens: each is a 400 with a JSON error, and the session still works.
  const other = await generateKeyPair("RS256");
  const replayed = await sign(claims({ jti: "replayed-jti", sid: "unrelated-session" }));
  let r = await post(form(replayed));
  assert.equal(r.status, 200, `a valid token for another session is accepted: ${r.body}`);
  assert.equal(r.headers["cache-control"], "no-store");
  const hostile = [
    ["replayed jti", form(replayed)],
    ["wrong iss", form(await sign(claims({ iss: "https://evil.example" })))],
    ["wrong aud", form(await sign(claims({ aud: "someone-else" })))],
    ["alg none", form(`${b64({ alg: "none", typ: "logout+jwt" })}.${b64(claims())}.`)],
    ["HS256 with the client secret", form(await new SignJWT(claims())
      .setProtectedHeader({ alg: "HS256", kid: jwk.kid })
      .sign(new TextEncoder().encode("oidc-provider-client-secret-0123456789")))],
    ["signed by another key", form(await sign(claims(), other.privateKey))],
    ["unknown kid", form(await sign(claims(), key, "no-such-kid"))],
    ["nonce present", form(await sign(claims({ nonce: "n-1" })))],
    ["events missing", form(await sign(claims({ events: undefined })))],
    ["events without the logout member", form(await sign(claims({ events: { "urn:other": {} } })))],
    ["no sub nor sid", form(await sign(claims({ sid: undefined })))],
    ["no jti", form(await sign(claims({ jti: undefined })))],
    ["old iat", form(await sign(claims({ iat: now() - 3600 })))],
    ["iat in the future", form(await sign(claims({ iat: now() + 3600 })))],
    ["expired", form(await sign(claims({ exp: now() - 600 })))],
    ["an ID token's typ", form(await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "id+jwt" }).sign(key))],
    ["oversized body", `logout_token=${"a".repeat(20 * 1024)}`],
    ["no logout_token", "token=abc"],
    ["not a JWT", form("not.a.jwt")],
  ];
  for (const [why, body] of hostile) {
    r = await post(body);
    assert.equal(r.status, 400, `${why}: ${r.status} ${r.body}`);
    assert.ok(JSON.parse(r.body).error_description, `${why}: a JSON error`);
  }
  r = await post(JSON.stringify({ logout_token: await sign(claims()) }), "application/json");
  assert.equal(r.status, 400, `wrong content type: ${r.status}`);
  assert.equal(await identity(page, "/op/still"), "bob", "the session survived every hostile token");

  // 3. The session ends at the provider (its own end-session page): it POSTs its logout token to
  //    the balancer before answering, so the very next request is refused.
  await page.goto(`${cfg.op}/session/end`);
  await page.locator("button[autofocus], button[type=submit]").first().click();
  await page.waitForLoadState();
  const refused = await page.goto(`${cfg.lb}/op/after`);
  assert.ok(page.url().startsWith(`${cfg.op}/interaction/`),
    `the balancer sent the browser to sign in again, not to the app: ${page.url()} ${refused.status()}`);
  assert.ok(!(await context.cookies(cfg.lb)).some((c) => c.name.startsWith("OpSession")),
    "the revoked session's cookies were cleared");

  // 4. Signing in again gives a new session, which works.
  await loginAtProvider(page, "bob");
  await page.waitForURL(`${cfg.lb}/op/after`);
  assert.equal(await identity(page, "/op/again"), "bob");
  console.log("back-channel logout: hostile tokens refused, provider logout refused the session, re-login ok");
} finally {
  await browser.close();
}
