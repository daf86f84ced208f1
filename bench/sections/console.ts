/**
 * 9. The operator console's fleet map (docs/console.md) on a large fleet: 1,000 pooled tenants in
 * 20 cells and 100 dedicated tenants, written as real tenant and stack files. Each round serves
 * GET /console/fleet's work as the control plane does it (load and validate the fleet files, group
 * them as GET /api/fleet does, render the map and the page) from a local HTTP server, and
 * Chromium (the Debian package, headless) loads the page with the console's stylesheet. The
 * session check and fastify's inject are left out (one database read and an in-process call).
 * Figures: server time, and the wall time from navigation start to the browser's load event.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { chromium } from "playwright-core";
import { layout } from "../../automation/console/html.ts";
import { fleetMap } from "../../automation/console/pages/fleet.ts";
import { fleetView } from "../../automation/http/routes/fleet.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
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
    .replace("us-east-1: { vpcsPerRegion: 10 }", "us-east-1: { vpcsPerRegion: 200, rdsInstancesPerRegion: 200, elasticIpsPerRegion: 400 }")
    .replace(/iamRolesPerAccount: \d+/, "iamRolesPerAccount: 5000");
  if (!project.includes("vpcsPerRegion: 200")) throw new Error(`${projectFile}: no us-east-1 quota line to raise`);
  writeFileSync(projectFile, project);
  const css = readFileSync(join(PROJECT_DIR, "automation", "console", "assets", "console.css"));
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
    const view = fleetView(requireFleet({ projectDir: fleet.dir }), "main");
    const page = layout({ title: "Fleet", user: { keyName: "bench", csrf: "bench" }, section: "fleet", body: fleetMap(view, "") });
    serverMs.push(performance.now() - t0);
    placements = (page.match(/data-tenant="/g) ?? []).length;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/console/fleet`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const loadMs: number[] = [];
    // One unmeasured round: Chromium's first navigation pays for its own start-up.
    for (let i = 0; i <= runs; i++) {
      log(`console fleet map: round ${i + 1}/${runs + 1}${i === 0 ? " (warm-up)" : ""}`);
      await page.goto(url, { waitUntil: "load" });
      const nav = await page.evaluate<number>("performance.getEntriesByType('navigation')[0].loadEventEnd");
      if (i > 0) loadMs.push(nav);
      else serverMs.length = 0;
    }
    if (placements !== 1100) throw new Error(`the fleet map lists ${placements} tenant placements, expected 1,100`);
    const load = summarize(loadMs);
    const srv = summarize(serverMs);
    return {
      name: "consoleFleetMap",
      data: { load, server: srv, placements, htmlBytes: (await page.content()).length },
      rows: [
        ["fleet map, 1,000 pooled in 20 cells + 100 dedicated: navigation to load event", fmtSummary(load, "ms"), "headless Chromium; includes the server's work below"],
        ["  of which the server (load + validate 1,100 tenant files, group, render)", fmtSummary(srv, "ms"), "what GET /api/fleet and the page render do per request"],
      ],
      targets: [target("console fleet map of 1,000 pooled + 100 dedicated tenants: load in headless Chromium (median)", load.median, "ms", "<=", 1000)],
    };
  } finally {
    await browser.close();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}
