// The login flows in real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright:
// protected URL → hosted UI → wrong password → right password → the target gets the claims;
// a second app signs in without a password (hosted-UI session); the balancer's logout path ends it all.
//
// usage: node hosted_ui.mjs '{"lb":"https://localhost:P","pool":"http://localhost:Q","user":"alice","password":"..."}'
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const bodyJson = async () => JSON.parse(await page.locator("body").innerText());

  // 1. The protected URL sends the browser to the hosted UI.
  await page.goto(`${cfg.lb}/tasks?from=browser`);
  await page.waitForURL((u) => u.href.startsWith(`${cfg.pool}/login?`));
  assert.equal(await page.title(), "Sign in · Tasks");
  assert.equal(await page.evaluate(() => document.activeElement.id), "username", "the user name field has focus");

  // 2. A wrong password shows an error, announced as an alert, and keeps the user name.
  await page.getByLabel("User name").fill(cfg.user);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").innerText(), /Incorrect username or password\./);
  assert.equal(await page.getByLabel("User name").inputValue(), cfg.user);

  // 3. The right password lands on the original URL, and the target receives the claims.
  await page.getByLabel("Password").fill(cfg.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${cfg.lb}/tasks?from=browser`);
  const echo = await bodyJson();
  assert.ok(echo.headers["x-amzn-oidc-data"], "x-amzn-oidc-data reached the target");
  assert.ok(echo.headers["x-amzn-oidc-identity"]);
  const lbCookies = await context.cookies(cfg.lb);
  const session = lbCookies.find((c) => c.name === "AWSELBAuthSessionCookie-0");
  assert.ok(session && session.secure && session.httpOnly, "the session cookie is Secure and HttpOnly");
  assert.ok(!lbCookies.some((c) => c.name === "AWSALBAuthNonce"), "the nonce cookie is gone after login");

  // 4. A second app on the same pool: no password asked (hosted-UI session).
  await page.goto(`${cfg.lb}/oidc/page`);
  await page.waitForURL(`${cfg.lb}/oidc/page`);
  assert.ok((await bodyJson()).headers["x-amzn-oidc-data"]);

  // 5. Logout at the balancer: its cookies are expired, the refresh token revoked, and the pool's
  //    /logout ends the hosted-UI session; the protected page asks for the password again.
  await page.goto(`${cfg.lb}/tasks/logout`);
  await page.waitForURL(`${cfg.lb}/signed-out`);
  assert.ok(!(await context.cookies(cfg.lb)).some((c) => c.name.startsWith("AWSELBAuthSessionCookie-")), "session shards expired");
  assert.ok(!(await context.cookies(cfg.pool)).some((c) => c.name === "cognito"), "the hosted-UI cookie is cleared");
  await page.goto(`${cfg.lb}/tasks`);
  await page.waitForURL((u) => u.href.startsWith(`${cfg.pool}/login?`));
  assert.ok(await page.getByLabel("Password").isVisible(), "the password is asked again");

  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/hosted-ui.png` });
  }
  console.log("browser: sign-in, wrong password, claims, silent second app, logout ok");
} finally {
  await browser.close();
}
