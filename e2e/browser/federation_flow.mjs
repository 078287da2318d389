// User-pool federation in real headless Chromium (Debian's) driven by Playwright, against two
// external providers played by `oidc-provider` (federation_provider.mjs):
//  1. the hosted UI offers both providers' buttons and the password form; "Sign in with Partner",
//     the provider's login, back through the pool's /oauth2/idpresponse to the app with a code,
//     exchanged for tokens; a second sign-in after the provider changed the user's nickname;
//  2. the same login name at the second provider is another user;
//  3. through the load balancer's authenticate-cognito rule (hosted UI, then a rule whose
//     authentication_request_extra_params go straight to the provider).
// Prints one JSON line with what the test checks.
//
// usage: node federation_flow.mjs '<json: pool, client_id, client_secret, redirect_uri, partner, other, lb>'
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

// The provider's development login (any name signs in), then its consent page when it asks.
async function loginAt(page, op, user) {
  await page.waitForURL((u) => u.href.startsWith(`${op}/interaction/`));
  await page.locator("input[name=login]").fill(user);
  await page.locator("input[name=password]").fill("any-password");
  await page.locator("button[type=submit]").first().click();
  await page.waitForURL((u) => !u.href.includes("/login") || !u.href.startsWith(op));
  if (page.url().startsWith(`${op}/interaction/`)) {
    await page.locator("button[type=submit]").first().click();
  }
}

const payload = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

function authorizeUrl(extra = {}) {
  const q = new URLSearchParams({
    client_id: cfg.client_id, response_type: "code", scope: "openid email profile",
    redirect_uri: cfg.redirect_uri, state: "app-state-1", ...extra,
  });
  return `${cfg.pool}/oauth2/authorize?${q}`;
}

// Back at the app with a code: exchange it and return the ID token's claims.
async function tokensAt(page) {
  await page.waitForURL((u) => u.href.startsWith(cfg.redirect_uri));
  const url = new URL(page.url());
  assert.equal(url.searchParams.get("state"), "app-state-1", "the app's state comes back");
  const code = url.searchParams.get("code");
  assert.ok(code, `a code in ${page.url()}`);
  const basic = Buffer.from(`${cfg.client_id}:${cfg.client_secret}`).toString("base64");
  const r = await fetch(`${cfg.pool}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${basic}` },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: cfg.redirect_uri }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  const t = await r.json();
  return payload(t.id_token);
}

const out = {};
try {
  // 1. The hosted UI: both buttons and the form; sign in with Partner.
  let context = await browser.newContext();
  let page = await context.newPage();
  await page.goto(authorizeUrl());
  await page.waitForURL((u) => u.pathname === "/login");
  const buttons = await page.locator("a.provider").allInnerTexts();
  assert.deepEqual(buttons.map((b) => b.trim()), ["Sign in with Partner", "Sign in with Other"]);
  assert.equal(await page.locator("input[name=password]").count(), 1, "COGNITO keeps the form");
  await page.locator("a.provider", { hasText: "Partner" }).click();
  await loginAt(page, cfg.partner, "ann");
  out.first = await tokensAt(page);

  // The provider changes the user's nickname; the next sign-in (straight, identity_provider=)
  // updates the mapped attribute.
  const set = await fetch(`${cfg.partner}/_test/claims/ann`, { method: "POST", body: JSON.stringify({ nickname: "second-visit" }) });
  assert.equal(set.status, 204);
  await context.close();
  context = await browser.newContext();
  page = await context.newPage();
  await page.goto(authorizeUrl({ identity_provider: "Partner" }));
  await loginAt(page, cfg.partner, "ann");
  out.second = await tokensAt(page);

  // 2. The same login name at the other provider is another user.
  await page.goto(authorizeUrl({ prompt: "login" }));
  await page.waitForURL((u) => u.pathname === "/login");
  await page.locator("a.provider", { hasText: "Other" }).click();
  await loginAt(page, cfg.other, "ann");
  out.other = await tokensAt(page);
  await context.close();

  // 3. Through the load balancer: the hosted UI's button, then straight to the provider.
  context = await browser.newContext({ ignoreHTTPSErrors: true });
  page = await context.newPage();
  await page.goto(`${cfg.lb}/tasks/home`);
  await page.waitForURL((u) => u.pathname === "/login");
  await page.locator("a.provider", { hasText: "Partner" }).click();
  await loginAt(page, cfg.partner, "bob");
  await page.waitForURL(`${cfg.lb}/tasks/home`);
  let echo = JSON.parse(await page.locator("body").innerText());
  out.lb = payload(echo.headers["x-amzn-oidc-data"]);
  await context.close();

  context = await browser.newContext({ ignoreHTTPSErrors: true });
  page = await context.newPage();
  await page.goto(`${cfg.lb}/fed/home`);
  await loginAt(page, cfg.partner, "carol");
  await page.waitForURL(`${cfg.lb}/fed/home`);
  echo = JSON.parse(await page.locator("body").innerText());
  out.straight = payload(echo.headers["x-amzn-oidc-data"]);
  await context.close();
  console.log(JSON.stringify(out));
  console.log("federation flow ok");
} finally {
  await browser.close();
}
