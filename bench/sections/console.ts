/**
 * 9. The operator console's fleet map (docs/console.md) on a large fleet: 1,000 pooled tenants in
 * 20 cells and 100 dedicated tenants (named as a real fleet's tenants are, not by their ids),
 * written as real tenant and stack files and committed to a git working copy. Each round serves
 * GET /console/fleet's work as the control plane does it (the fleet from
 * automation/git/fleetCache.ts, grouped as GET /api/fleet does, sent as JSON and parsed back as the
 * console's inject does, the map and the page rendered) from a local HTTP server, and Chromium
 * (the Debian package, headless) loads the page with the console's stylesheet. The session check
 * and fastify's inject are left out (one database read and an in-process call).
 * Three ways in the same run, their rounds interleaved so that the machine's load falls on each
 * alike: the console's ("now": fleet loaded once per commit, the compact map), the previous markup
 * with the same cache ("markup before": bench/lib/fleetMapBefore.ts), and the fleet files loaded
 * on every request with the compact map ("files per request": as before the cache).
 * Figures: server time; navigation start to the load event; navigation start to the first frame
 * after the load event (the map styled, laid out and painted: the figure the target is held to).
 * On a machine whose load average is many times its cores, those wall times are mostly waiting
 * for a core; so further rounds, traced (Chromium's trace events, thread CPU time), give the CPU
 * the page costs the renderer's main thread (parse, style, layout, paint, all of its tasks), which
 * the machine's load does not inflate. The traced rounds are not timed (tracing slows them).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import { CHIP_CSS_BEFORE, fleetMapBefore } from "../lib/fleetMapBefore.ts";
import { PROJECT_DIR, writeSyntheticFleet } from "../lib/fleetGen.ts";
import { fmtSummary, target, type Section } from "../lib/report.ts";
import { summarize, type Summary } from "../lib/stats.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

type Mode = "now" | "markup before" | "files per request";
const MODES: Mode[] = ["now", "markup before", "files per request"];

export async function consoleFleetMap(runs: number, log: (s: string) => void): Promise<Section> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}; install it with \`apt-get install -y --no-install-recommends chromium\`, or set CHROMIUM_PATH`);
  // bench/lib/fleetGen.ts raises the service quotas as such a fleet's operators would have asked AWS to.
  const fleet = writeSyntheticFleet({ pooled: 1000, cells: 20, dedicated: 100 });
  try {
    // Names as people give them (the generator names each tenant by its id, which the map does not repeat).
    for (const f of readdirSync(join(fleet.dir, "tenants"))) {
      const file = join(fleet.dir, "tenants", f);
      const text = readFileSync(file, "utf8");
      const named = text.replace(/^displayName: (\S+)$/m, "displayName: Company $1 GmbH");
      if (named === text) throw new Error(`${file}: no displayName line to rename`);
      writeFileSync(file, named);
    }
    // A working copy, as the control plane's: the cache keys the fleet by its commit.
    const gitEnv = { ...process.env, GIT_AUTHOR_NAME: "Bench", GIT_AUTHOR_EMAIL: "bench@bench.invalid", GIT_COMMITTER_NAME: "Bench", GIT_COMMITTER_EMAIL: "bench@bench.invalid" };
    for (const args of [["init", "--quiet", "--initial-branch=main"], ["add", "--all"], ["commit", "--quiet", "-m", "synthetic fleet"]]) {
      execFileSync("git", args, { cwd: fleet.dir, env: gitEnv, stdio: ["ignore", "ignore", "pipe"] });
    }
    return await measure(fleet.dir, runs, log);
  } finally {
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

async function measure(fleetDir: string, runs: number, log: (s: string) => void): Promise<Section> {
  const css = readFileSync(join(PROJECT_DIR, "automation", "console", "assets", "console.css"), "utf8");
  let mode: Mode = "now";
  const cache = new FleetCache(fleetDir);
  const serverMs = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const placements = new Map<Mode, number>();
  const bytes = new Map<Mode, number>();
  const server = createServer((req, res) => {
    if (req.url === "/console/assets/console.css") {
      res.writeHead(200, { "content-type": "text/css" }).end(mode === "markup before" ? css + CHIP_CSS_BEFORE : css);
      return;
    }
    if (req.url !== "/console/fleet") {
      // The browser's own requests (favicon.ico) are not the page.
      res.writeHead(404).end();
      return;
    }
    const t0 = performance.now();
    const m = mode;
    void (m === "files per request" ? new FleetCache(fleetDir) : cache).get().then(({ fleet: loaded, problems }) => {
      if (!loaded) throw new FleetError(problems);
      // GET /api/fleet's JSON, parsed back as the console's inject does.
      const view = JSON.parse(JSON.stringify(fleetView(loaded, "main"))) as FleetView;
      const map = m === "markup before" ? fleetMapBefore(view) : fleetMap(view, "");
      const page = layout({ title: "Fleet", user: { keyName: "bench", csrf: "bench" }, section: "fleet", body: map });
      serverMs.get(m)!.push(performance.now() - t0);
      placements.set(m, (page.match(m === "markup before" ? /data-tenant="/g : /<a href="tenants\//g) ?? []).length);
      bytes.set(m, Buffer.byteLength(page));
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/console/fleet`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    type Phases = { responseEnd: number; domInteractive: number; loadEventEnd: number; painted: number };
    const phases = new Map<Mode, Phases[]>(MODES.map((m) => [m, []]));
    const round = async (m: Mode, kind: "warm-up" | "timed" | "traced") => {
      mode = m;
      await page.goto(url, { waitUntil: "load" });
      // The first frame after the load event: the next animation frame's callback runs before that
      // frame's style, layout and paint, so the timer it sets runs after them (an upper bound: it
      // also counts this evaluation's round trip).
      const nav = await page.evaluate<Phases>(`new Promise((done) => requestAnimationFrame(() => setTimeout(() => {
        const n = performance.getEntriesByType("navigation")[0];
        done({ responseEnd: n.responseEnd, domInteractive: n.domInteractive, loadEventEnd: n.loadEventEnd, painted: performance.now() });
      })))`);
      if (kind === "timed") phases.get(m)!.push(nav);
      else if (kind === "warm-up") serverMs.get(m)!.length = 0;
      // A traced round's server time stands: the server does the same work whatever the browser does.
    };
    // One unmeasured round each: Chromium's first navigation pays for its own start-up, the cache its first load.
    for (const m of MODES) {
      log(`console fleet map (${m}): warm-up`);
      await round(m, "warm-up");
    }
    const loadsBefore = cache.loads;
    for (let i = 0; i < runs; i++) {
      for (const m of MODES) {
        log(`console fleet map (${m}): round ${i + 1}/${runs}`);
        await round(m, "timed");
      }
    }
    // Traced rounds: the renderer main thread's CPU per navigation, for the two markups.
    const cpu = new Map<Mode, { task: number[]; parse: number[]; style: number[]; layout: number[]; paint: number[] }>();
    for (let i = 0; i < runs; i++) {
      for (const m of ["now", "markup before"] as const) {
        log(`console fleet map (${m}): traced round ${i + 1}/${runs}`);
        await browser.startTracing(page, { categories: ["toplevel", "devtools.timeline"] });
        await round(m, "traced");
        const t = rendererCpu((await browser.stopTracing()).toString("utf8"));
        const c = cpu.get(m) ?? { task: [], parse: [], style: [], layout: [], paint: [] };
        c.task.push(t.task);
        c.parse.push(t.ParseHTML);
        c.style.push(t.UpdateLayoutTree);
        c.layout.push(t.Layout);
        c.paint.push(t.Paint);
        cpu.set(m, c);
      }
    }
    if (cache.loads !== loadsBefore) throw new Error(`the cached passes loaded the fleet ${cache.loads - loadsBefore} more times, expected none after the warm-up`);
    for (const m of MODES) if (placements.get(m) !== 1100) throw new Error(`the fleet map (${m}) lists ${placements.get(m)} tenant placements, expected 1,100`);
    const of = (m: Mode, k: keyof Phases): Summary => summarize(phases.get(m)!.map((p) => p[k]));
    const data = Object.fromEntries(
      MODES.map((m) => [m, { rendererCpu: cpu.has(m) ? Object.fromEntries(Object.entries(cpu.get(m)!).map(([k, v]) => [k, summarize(v)])) : undefined, painted: of(m, "painted"), load: of(m, "loadEventEnd"), domInteractive: of(m, "domInteractive"), responseEnd: of(m, "responseEnd"), server: summarize(serverMs.get(m)!), htmlBytes: bytes.get(m) }]),
    );
    const now = data.now!;
    const kib = (m: Mode) => `${Math.round(bytes.get(m)! / 1024)} KiB of HTML`;
    const cpuText = (m: "now" | "markup before") => {
      const c = cpu.get(m)!;
      const med = (v: number[]) => Math.round(summarize(v).median);
      return `${fmtSummary(summarize(c.task), "ms")}: parse ${med(c.parse)}, style ${med(c.style)}, layout ${med(c.layout)}, paint ${med(c.paint)}`;
    };
    const phaseText = (m: Mode) => `responseEnd ${Math.round(data[m]!.responseEnd.median)}, domInteractive ${Math.round(data[m]!.domInteractive.median)}, load ${Math.round(data[m]!.load.median)}, painted ${Math.round(data[m]!.painted.median)}`;
    return {
      name: "consoleFleetMap",
      data: { ...data, placements: 1100 },
      rows: [
        ["fleet map, 1,000 pooled in 20 cells + 100 dedicated: navigation to the first frame after load", fmtSummary(now.painted, "ms"), `headless Chromium; compact map, fleet loaded once per commit; ${kib("now")}`],
        ["  navigation to load event", fmtSummary(now.load, "ms"), ""],
        ["  of which the server (commit + file check, group, JSON, render)", fmtSummary(now.server, "ms"), "per request, fleet kept for the commit"],
        ["  browser phases (median ms from navigation start)", phaseText("now"), "response = server + transfer; then parse; then style, layout, paint"],
        ["  renderer main thread CPU per navigation (traced rounds)", cpuText("now"), "thread CPU time, not inflated by the machine's load"],
        ["  baseline, same run: the previous markup, to the first frame after load", fmtSummary(data["markup before"]!.painted, "ms"), `five elements a tenant (bench/lib/fleetMapBefore.ts); ${kib("markup before")}`],
        ["  baseline: previous markup's browser phases", phaseText("markup before"), ""],
        ["  baseline: previous markup's renderer main thread CPU per navigation", cpuText("markup before"), ""],
        ["  baseline, same run: fleet files loaded per request, to the first frame after load", fmtSummary(data["files per request"]!.painted, "ms"), "compact map; the files loaded and validated every time (before the cache)"],
        ["  baseline: of which the server (load + validate 1,100 tenant files, ...)", fmtSummary(data["files per request"]!.server, "ms"), ""],
      ],
      targets: [target("console fleet map of 1,000 pooled + 100 dedicated tenants: navigation to first frame after load in headless Chromium (median)", now.painted.median, "ms", "<=", 1000)],
    };
  } finally {
    await browser.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * The CPU time (ms) of the renderer main threads' tasks in a Chromium trace, and of the parse,
 * style (UpdateLayoutTree), layout and paint events among them: the `tdur` (thread time) of
 * complete events on threads named CrRendererMain.
 */
export function rendererCpu(traceJson: string): { task: number; ParseHTML: number; UpdateLayoutTree: number; Layout: number; Paint: number } {
  type Event = { ph: string; name: string; pid: number; tid: number; tdur?: number; args?: { name?: string } };
  const events = (JSON.parse(traceJson) as { traceEvents: Event[] }).traceEvents;
  const main = new Set(events.filter((e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain").map((e) => `${e.pid}:${e.tid}`));
  if (main.size === 0) throw new Error("the Chromium trace names no CrRendererMain thread");
  const sum = (name: string) => events.filter((e) => e.ph === "X" && e.name === name && main.has(`${e.pid}:${e.tid}`)).reduce((n, e) => n + (e.tdur ?? 0), 0) / 1000;
  const out = { task: sum("ThreadControllerImpl::RunTask"), ParseHTML: sum("ParseHTML"), UpdateLayoutTree: sum("UpdateLayoutTree"), Layout: sum("Layout"), Paint: sum("Paint") };
  if (out.task === 0) throw new Error("the Chromium trace has no timed task on the renderer's main thread (no thread CPU time recorded)");
  return out;
}
