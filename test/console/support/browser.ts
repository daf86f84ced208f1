/**
 * Chromium for the console's browser tests: the Debian package's binary (/usr/bin/chromium, or
 * CHROMIUM_PATH), driven by playwright-core. Browsers cannot be downloaded here, so a missing
 * binary is an error naming the install command, never a skipped test. Also: axe-core injected
 * into a page, and screenshots into test-results/console/ (gitignored) for a reviewer.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const INSTALL_COMMAND = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium";
/** Where the tests write their screenshots (gitignored). */
export const SCREENSHOT_DIR = resolve(import.meta.dirname, "../../../test-results/console");

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: the console's browser tests need it; install it with \`${INSTALL_COMMAND}\` (as root), or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  // The viewport only: what a person sees first, and small enough to keep in docs/console/.
  await page.screenshot({ path });
  return path;
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** axe-core's violations of impact serious or critical on the page as it is now (WCAG 2.1 A/AA rules). */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated through the DevTools protocol: the console's Content-Security-Policy allows no inline script, and stays on.
  await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate<AxeViolation[]>(`(async () => {
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }));
  })()`);
  return found.filter((v) => v.impact === "serious" || v.impact === "critical");
}
