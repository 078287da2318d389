// Self-service account flows in real headless Chromium (Debian's) driven by Playwright, with
// JavaScript turned off in the page (the hosted UI must work without it): sign-up with a
// confirmation code, forgot password with a reset code, and the new password an admin-created user
// must choose. Codes are read from the pool's outbox file, as a developer would.
//
// usage: node account_flows.mjs '{"lb":"https://localhost:P","pool":"http://localhost:Q","outbox":"/path/test.jsonl",
//                                  "invited":"ivy","temporary":"..."}'
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

function lastCode(username, purpose) {
  const lines = readFileSync(cfg.outbox, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const mine = lines.filter((l) => l.username === username && l.purpose === purpose);
  assert.ok(mine.length > 0, `a ${purpose} message for ${username} in the outbox`);
  return mine[mine.length - 1].code;
}

async function freshPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${cfg.lb}/tasks?flow=${Math.random()}`);
  await page.waitForURL((u) => u.href.startsWith(`${cfg.pool}/login?`));
  return page;
}

const alertText = async (page) => {
  await page.getByRole("alert").waitFor();
  return page.getByRole("alert").innerText();
};

async function landsOnTasks(page) {
  await page.waitForURL((u) => u.href.startsWith(`${cfg.lb}/tasks?flow=`));
  const echo = JSON.parse(await page.locator("body").innerText());
  assert.ok(echo.headers["x-amzn-oidc-data"], "the target got the claims");
  return echo;
}

try {
  // The client's own logo and CSS are on its pages.
  {
    const page = await freshPage();
    assert.ok(await page.locator("img.logo").isVisible(), "the client's logo is shown");
    const border = await page.locator(".card").evaluate((e) => getComputedStyle(e).borderTopColor);
    assert.equal(border, "rgb(200, 0, 0)", "the client's CSS applies");
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/login.png` });
    await page.context().close();
  }

  // 1. Sign-up: a weak password is refused, the code confirms the account, then sign-in works.
  {
    const page = await freshPage();
    await page.getByRole("link", { name: "Need an account? Sign up" }).click();
    await page.waitForURL((u) => u.pathname === "/signup");
    assert.equal(await page.title(), "Sign up · Tasks");
    await page.getByLabel("User name").fill("newbie");
    await page.getByLabel("Email").fill("newbie@example.com");
    await page.getByLabel("Password").fill("weak");
    await page.getByRole("button", { name: "Sign up" }).click();
    assert.match(await alertText(page), /Password does not conform to policy/);
    assert.equal(await page.getByLabel("User name").inputValue(), "newbie", "the form keeps what was typed");
    await page.getByLabel("Password").fill("Newbie-pass-1!");
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByRole("status").waitFor();
    assert.match(await page.getByRole("status").innerText(), /We sent a code to n\*\*\*@e\*\*\*/);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/confirm.png` });
    const code = lastCode("newbie", "sign_up");
    await page.getByLabel("Confirmation code").fill(code === "000000" ? "111111" : "000000");
    await page.getByRole("button", { name: "Confirm account" }).click();
    assert.match(await alertText(page), /Invalid verification code/);
    await page.getByLabel("Confirmation code").fill(code);
    await page.getByRole("button", { name: "Confirm account" }).click();
    await page.getByRole("status").waitFor();
    assert.match(await page.getByRole("status").innerText(), /Your account is confirmed/);
    assert.equal(await page.getByLabel("User name").inputValue(), "newbie");
    await page.getByLabel("Password").fill("Newbie-pass-1!");
    await page.getByRole("button", { name: "Sign in" }).click();
    await landsOnTasks(page);
    await page.context().close();
  }

  // 2. Forgot password: the code from the outbox sets a new password; the old one stops working.
  {
    const page = await freshPage();
    await page.getByRole("link", { name: "Forgot your password?" }).click();
    await page.getByLabel("User name").fill("newbie");
    await page.getByRole("button", { name: "Send code" }).click();
    await page.getByRole("status").waitFor();
    assert.match(await page.getByRole("status").innerText(), /we sent a code to n\*\*\*@e\*\*\*/);
    await page.getByLabel("Code", { exact: true }).fill(lastCode("newbie", "forgot_password"));
    await page.getByLabel("New password", { exact: true }).fill("Newbie-pass-2!");
    await page.getByLabel("Confirm new password").fill("Newbie-pass-2?");
    await page.getByRole("button", { name: "Change password" }).click();
    assert.match(await alertText(page), /do not match/);
    await page.getByLabel("Code", { exact: true }).fill(lastCode("newbie", "forgot_password"));
    await page.getByLabel("New password", { exact: true }).fill("Newbie-pass-2!");
    await page.getByLabel("Confirm new password").fill("Newbie-pass-2!");
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByRole("status").waitFor();
    assert.match(await page.getByRole("status").innerText(), /Your password is changed/);
    await page.getByLabel("Password").fill("Newbie-pass-1!");
    await page.getByRole("button", { name: "Sign in" }).click();
    assert.match(await alertText(page), /Incorrect username or password/);
    await page.getByLabel("Password").fill("Newbie-pass-2!");
    await page.getByRole("button", { name: "Sign in" }).click();
    await landsOnTasks(page);
    await page.context().close();
  }

  // 3. An admin-created user signs in with the temporary password and must choose a new one.
  {
    const page = await freshPage();
    await page.getByLabel("User name").fill(cfg.invited);
    await page.getByLabel("Password").fill(cfg.temporary);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((u) => u.pathname === "/login");
    assert.equal(await page.title(), "Choose a new password · Tasks");
    await page.getByLabel("New password", { exact: true }).fill("short");
    await page.getByLabel("Confirm new password").fill("short");
    await page.getByRole("button", { name: "Set password" }).click();
    assert.match(await alertText(page), /Password does not conform to policy/);
    await page.getByLabel("New password", { exact: true }).fill("Invited-pass-1!");
    await page.getByLabel("Confirm new password").fill("Invited-pass-1!");
    await page.getByRole("button", { name: "Set password" }).click();
    const echo = await landsOnTasks(page);
    assert.ok(echo.headers["x-amzn-oidc-identity"]);
    await page.context().close();
  }

  // 4. Accessibility: axe-core (WCAG 2.1 A and AA rules: labels, contrast, landmarks, ...) finds
  //    nothing on any account page, in light and dark colour schemes.
  for (const scheme of ["light", "dark"]) {
    // bypassCSP: the pages forbid every script, axe included.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, colorScheme: scheme, bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${cfg.lb}/tasks`);
    await page.waitForURL((u) => u.href.startsWith(`${cfg.pool}/login?`));
    const login = page.url();
    const pages = [login, login.replace("/login?", "/signup?"), login.replace("/login?", "/forgotPassword?"),
      login.replace("/login?", "/confirmUser?"), login.replace("/login?", "/confirmForgotPassword?")];
    for (const url of pages) {
      await page.goto(url);
      // An error state too: the alert must also be readable.
      await page.addScriptTag({ path: axePath });
      const result = await page.evaluate(async () =>
        await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
      const problems = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
      assert.deepEqual(problems, [], `${scheme} ${new URL(url).pathname}`);
    }
    await page.goto(login);
    await page.getByLabel("User name").fill("nobody");
    await page.getByLabel("Password").fill("wrong-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").waitFor();
    await page.addScriptTag({ path: axePath });
    const result = await page.evaluate(async () =>
      await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } }));
    assert.deepEqual(result.violations.map((v) => v.id), [], `${scheme} login with an error`);
    await context.close();
  }

  // 5. Keyboard: the first field has focus and Tab walks the form in order (JavaScript on here,
  //    as focus is observed through it).
  {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${cfg.lb}/tasks`);
    await page.waitForURL((u) => u.href.startsWith(`${cfg.pool}/login?`));
    await page.getByRole("link", { name: "Need an account? Sign up" }).click();
    await page.waitForURL((u) => u.pathname === "/signup");
    const focused = () => page.evaluate(() => document.activeElement.id || document.activeElement.tagName);
    // autofocus lands once the page has rendered.
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === "username", null, { timeout: 5000 });
    assert.equal(await focused(), "username");
    await page.keyboard.press("Tab");
    assert.equal(await focused(), "email");
    await page.keyboard.press("Tab");
    assert.equal(await focused(), "password");
    await page.keyboard.press("Tab");
    assert.equal(await focused(), "BUTTON");
    await context.close();
  }
  console.log("browser: sign-up, confirmation, forgot password, new password, client branding, axe, keyboard ok");
} finally {
  await browser.close();
}
