// TOTP MFA in the hosted UI, in real headless Chromium (Debian's) driven by Playwright: a pool that
// requires MFA shows the setup page after the password; the key shown there, typed into an
// authenticator (computed here with Node's crypto, RFC 6238), completes sign-in; the next sign-in
// asks for a code.
//
// usage: node mfa.mjs '{"lb":"https://localhost:P","pool":"http://localhost:Q","user":"alice","password":"..."}'
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);

function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const c of s.replace(/[\s=]/g, "").toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

function totp(key, offset = 0) {
  const step = Math.floor(Date.now() / 1000 / 30) + offset;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(msg).digest();
  const o = mac[mac.length - 1] & 0x0f;
  const n = ((mac[o] & 0x7f) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
  return String(n % 1000000).padStart(6, "0");
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

async function signIn() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(`${cfg.lb}/tasks?mfa=1`);
  await page.waitForURL((u) => u.href.startsWith(`${cfg.pool}/login?`));
  await page.getByLabel("User name").fill(cfg.user);
  await page.getByLabel("Password").fill(cfg.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  return page;
}

try {
  // 1. Setup: the key is on the page; a wrong code is refused; the right one signs in.
  let key;
  let setupCode;
  {
    const page = await signIn();
    await page.waitForURL((u) => u.pathname === "/login");
    assert.equal(await page.title(), "Set up your authenticator · Tasks");
    const notice = await page.getByRole("status").innerText();
    const m = notice.match(/Key: ([A-Z2-7 ]+)/);
    assert.ok(m, `the key is shown: ${notice}`);
    key = base32(m[1]);
    assert.equal(key.length, 20);
    const link = await page.getByRole("link", { name: /authenticator app/ }).getAttribute("href");
    assert.match(link, /^otpauth:\/\/totp\/.*secret=[A-Z2-7]+&issuer=/);
    if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/mfa-setup.png` });
    await page.getByLabel("Code").fill(totp(key, 0) === "000000" ? "111111" : "000000");
    await page.getByRole("button", { name: "Verify and sign in" }).click();
    await page.getByRole("alert").waitFor();
    assert.match(await page.getByRole("alert").innerText(), /not right/);
    // The key shown again is the pool's; the form never carries it back.
    const again = (await page.getByRole("status").innerText()).match(/Key: ([A-Z2-7 ]+)/);
    assert.equal(again && again[1], m[1]);
    assert.equal(await page.locator('input[name="secret"]').count(), 0);
    setupCode = totp(key, 0);
    await page.getByLabel("Code").fill(setupCode);
    await page.getByRole("button", { name: "Verify and sign in" }).click();
    await page.waitForURL(`${cfg.lb}/tasks?mfa=1`);
    assert.ok(JSON.parse(await page.locator("body").innerText()).headers["x-amzn-oidc-data"]);
    await page.context().close();
  }
  // 2. The next sign-in (another browser) asks for the code after the password.
  {
    const page = await signIn();
    await page.waitForURL((u) => u.pathname === "/login");
    assert.equal(await page.title(), "Enter your code · Tasks");
    // The setup code is spent (even if a 30 s step has passed since); the next step's code is
    // accepted (one step of clock skew allowed).
    await page.getByLabel("Code").fill(setupCode);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").waitFor();
    await page.getByLabel("Code").fill(totp(key, 1));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${cfg.lb}/tasks?mfa=1`);
    await page.context().close();
  }
  console.log("browser: MFA setup, wrong code, code at sign-in ok");
} finally {
  await browser.close();
}
