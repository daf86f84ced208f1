/**
 * 9. The operator console's fleet map (docs/console.md) on a large fleet: 1,000 pooled tenants in
 * 20 cells and 100 dedicated tenants, written as real tenant and stack files and committed to a
 * git working copy. Each round serves GET /console/fleet's work as the control plane does it (the
 * fleet from automation/git/fleetCache.ts, grouped as GET /api/fleet does, sent as JSON and parsed
 * back as the console's inject does, the map and the page rendered) from a local HTTP server, and
 * Chromium (the Debian package, headless) loads the page with the console's stylesheet. The
 * session check and fastify's inject are left out (one database read and an in-process call).
 * Two passes in the same run: the baseline loads the fleet files on every request (as before the
 * cache), then the control plane's way, loaded once per commit.
 * Figures: server time, and the wall time from navigation start to the browser's load event.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { chromium } from "playwright-core";
import { layout } from "../../automation/console/html.ts";
import { fleetMap } from "../../automation/console/pages/fleet.ts";
import { FleetCache } from "../../automation/git/fleetCache.ts";
import { fleetView, type FleetView } from "../../automation/http/routes/fleet.ts";
import { FleetError } from "../../infra/model/problems.ts";
import { PROJECT_DIR, writeSyntheticFleet } from "../lib/fleetGen.ts";
import { fmtSummary, target, type Section } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export async function consoleFleetMap(runs: number, log: (s: string) => void): Promise<Section> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}; install it with \`apt-get install -y --no-install-recommends chromium\`, or set CHROMIUM_PATH`);
  const fleet = writeSyntheticFleet({ pooled: 1000, cells: 20, dedicated: 100 });
  // A fleet this size needs raised quotas (VPCs, RDS instances, EIPs in us-east-1, IAM roles): as its operators would have asked AWS for.
  const projectFile = join(fleet.dir, "Pulumi.yaml");
  const project = readFileSync(projectFile, "utf8")
    .replace("us-east-1: { vpcsPerRegion: 10, elasticIpsPerRegion: 10 }", "us-east-1: { vpcsPerRegion: 200, rdsInstancesPerRegion: 200, elasticIpsPerRegion: 400 }")
    .replace(/iamRolesPerAccount: \d+/, "iamRolesPerAccount: 5000");
  if (!project.includes("vpcsPerRegion: 200")) throw new Error(`${projectFile}: no us-east-1 quota line to raise`);
  writeFileSync(projectFile, project);
  // A working copy, as the control plane's: the cache keys the fleet by its commit.
  const gitEnv = { ...process.env, GIT_AUTHOR_NAME: "Bench", GIT_AUTHOR_EMAIL: "bench@bench.invalid", GIT_COMMITTER_NAME: "Bench", GIT_COMMITTER_EMAIL: "bench@bench.invalid" };
  for (const args of [["init", "--quiet", "--initial-branch=main"], ["add", "--all"], ["commit", "--quiet", "-m", "synthetic fleet"]]) {
    execFileSync("git", args, { cwd: fleet.dir, env: gitEnv, stdio: ["ignore", "ignore", "pipe"] });
  }
  const css = readFileSync(join(PROJECT_DIR, "automation", "console", "assets", "console.css"));
  // "baseline": a new cache per request (the files loaded every time); "cached": one cache, as the control plane keeps it.
  let mode: "baseline" | "cached" = "baseline";
  const cache = new FleetCache(fleet.dir);
  const serverMs: number[] = [];
  let placements = 0;
  const server = createServer((req, res) => {
    if (req.url === "/console/assets/console.css") {
      res.writeHead(200, { "content-type": "text/css" }).end(css);
      return;
    }
    if (req.url !== "/console/fleet") {
      // The browser's own requests (favicon.ico) are not the page.
      res.writeHead(404).end();
      return;
    }
    const t0 = performance.now();
    void (mode === "cached" ? cache : new FleetCache(fleet.dir)).get().then(({ fleet: loaded, problems }) => {
      if (!loaded) throw new FleetError(problems);
      // GET /api/fleet's JSON, parsed back as the console's inject does.
      const view = JSON.parse(JSON.stringify(fleetView(loaded, "main"))) as FleetView;
      const page = layout({ title: "Fleet", user: { keyName: "bench", csrf: "bench" }, section: "fleet", body: fleetMap(view, "") });
      serverMs.push(performance.now() - t0);
      placements = (page.match(/data-tenant="/g) ?? []).length;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/console/fleet`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    type Phases = { responseStart: number; responseEnd: number; domInteractive: number; domContentLoadedEventEnd: number; loadEventEnd: number };
    const measure = async () => {
      const loadMs: number[] = [];
      const phases: Phases[] = [];
      serverMs.length = 0;
      // One unmeasured round per pass: Chromium's first navigation pays for its own start-up, the cache its first load.
      for (let i = 0; i <= runs; i++) {
        log(`console fleet map (${mode}): round ${i + 1}/${runs + 1}${i === 0 ? " (warm-up)" : ""}`);
        await page.goto(url, { waitUntil: "load" });
        const nav = await page.evaluate<Phases>(
          "(({ responseStart, responseEnd, domInteractive, domContentLoadedEventEnd, loadEventEnd }) => ({ responseStart, responseEnd, domInteractive, domContentLoadedEventEnd, loadEventEnd }))(performance.getEntriesByType('navigation')[0])",
        );
        if (i > 0) {
          loadMs.push(nav.loadEventEnd);
          phases.push(nav);
        }
        else serverMs.length = 0;
      }
      if (placements !== 1100) throw new Error(`the fleet map lists ${placements} tenant placements, expected 1,100`);
      // Where the time goes in the browser (medians of the navigation timing, ms from navigation start).
      const median = (k: keyof Phases) => summarize(phases.map((p) => p[k])).median;
      const timing = { responseStart: median("responseStart"), responseEnd: median("responseEnd"), domInteractive: median("domInteractive"), domContentLoaded: median("domContentLoadedEventEnd"), load: median("loadEventEnd") };
      return { load: summarize(loadMs), server: summarize(serverMs), timing };
    };
    const baseline = await measure();
    mode = "cached";
    const loadsBefore = cache.loads;
    const cached = await measure();
    if (cache.loads - loadsBefore !== 1) throw new Error(`the cached pass loaded the fleet ${cache.loads - loadsBefore} times, expected once`);
    return {
      name: "consoleFleetMap",
      data: { load: cached.load, server: cached.server, baseline, placements, htmlBytes: (await page.content()).length },
      rows: [
        ["fleet map, 1,000 pooled in 20 cells + 100 dedicated: navigation to load event", fmtSummary(cached.load, "ms"), "headless Chromium; fleet loaded once per commit (the control plane's way)"],
        ["  of which the server (commit + file check, group, JSON, render)", fmtSummary(cached.server, "ms"), "per request, fleet kept for the commit"],
        ["  browser phases (median ms from navigation start)", Object.entries(cached.timing).map(([k, v]) => `${k} ${Math.round(v)}`).join(", "), "response = server + transfer; then parse, style, layout"],
        ["  baseline, same run: navigation to load event", fmtSummary(baseline.load, "ms"), "the fleet files loaded on every request (before the cache)"],
        ["  baseline: of which the server (load + validate 1,100 tenant files, ...)", fmtSummary(baseline.server, "ms"), ""],
      ],
      targets: [target("console fleet map of 1,000 pooled + 100 dedicated tenants: load in headless Chromium (median)", cached.load.median, "ms", "<=", 1000)],
    };
  } finally {
    await browser.close();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}
