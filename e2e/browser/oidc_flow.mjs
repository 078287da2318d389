// Portcullis in front of oidc-provider, in real headless Chromium (Debian's) driven by Playwright:
// login through the provider's own pages, a request after the access token expired (the balancer
// refreshes it), logout at the balancer (the provider's end-session page confirms), and re-login.
//
// usage: node oidc_flow.mjs '{"lb":"https://localhost:P","op":"http://localhost:Q"}'
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
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
  // The development consent page, when the provider asks for it.
  await page.waitForURL((u) => !u.href.includes("/login") || u.href.startsWith(cfg.lb));
  if (page.url().startsWith(`${cfg.op}/interaction/`)) {
    await page.locator("button[type=submit]").first().click();
  }
}

const json = async (page) => JSON.parse(await page.locator("body").innerText());

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();

  // 1. Login through the provider's pages.
  await page.goto(`${cfg.lb}/op/home`);
  await loginAtProvider(page, "ann");
  await page.waitForURL(`${cfg.lb}/op/home`);
  let echo = await json(page);
  assert.equal(echo.headers["x-amzn-oidc-identity"], "ann");
  const token1 = echo.headers["x-amzn-oidc-accesstoken"];
  assert.ok(token1, "the access token reached the target");
  const data = JSON.parse(Buffer.from(echo.headers["x-amzn-oidc-data"].split(".")[1], "base64url").toString());
  assert.equal(data.email, "ann@op.example", "userinfo claims from oidc-provider");
  assert.equal(data.iss, cfg.op);

  // 2. After the 4-second access token expired, the balancer refreshes it (new token, same user).
  await page.waitForTimeout(5500);
  await page.goto(`${cfg.lb}/op/later`);
  await page.waitForURL(`${cfg.lb}/op/later`);
  echo = await json(page);
  assert.equal(echo.headers["x-amzn-oidc-identity"], "ann");
  assert.notEqual(echo.headers["x-amzn-oidc-accesstoken"], token1, "a refreshed access token");

  // 3. Logout at the balancer: shards expired, the refresh token revoked, then the provider's
  //    end-session page (with id_token_hint) signs the provider session out and returns.
  await page.goto(`${cfg.lb}/op/logout`);
  await page.waitForURL((u) => u.href.startsWith(`${cfg.op}/session/end`));
  await page.locator("button[autofocus], button[type=submit]").first().click();
  await page.waitForURL((u) => u.href.startsWith(`${cfg.lb}/signed-out`));
  assert.ok(!(await context.cookies(cfg.lb)).some((c) => c.name.startsWith("OpSession")), "session shards expired");

  // 4. Re-login: the provider asks again (its session ended), then the app is reachable.
  await page.goto(`${cfg.lb}/op/again`);
  await loginAtProvider(page, "ann");
  await page.waitForURL(`${cfg.lb}/op/again`);
  assert.equal((await json(page)).headers["x-amzn-oidc-identity"], "ann");
  console.log("oidc-provider: login, refresh, logout, re-login ok");
} finally {
  await browser.close();
}
