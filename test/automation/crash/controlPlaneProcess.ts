/**
 * The control plane as a child process, the way `npm run control-plane` runs it (automation/main.ts
 * under tsx), with its embedded PostgreSQL, settings in a temporary directory and the Pulumi CLI
 * test double as TENANCY_PULUMI_ROOT: for the crash-injection suite, which kills it with SIGKILL
 * at named points (TENANCY_CRASH_AT, automation/crashPoints.ts) and starts it again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { EMBEDDED_DATABASE, EMBEDDED_USER } from "../../../automation/db/database.ts";
import { isProcessAlive } from "../../../automation/processAlive.ts";
import { reachableTempDir, serverUser } from "../../../automation/db/pgAccess.ts";
import { newApiKey } from "../../../automation/http/apiKeys.ts";
import { WORK_DIR } from "../../../automation/tempDir.ts";
import { commandLog, installFakePulumiBinary, type FakePulumiOptions } from "../support/fakePulumi.ts";
import { makeFixtureRepo, type FixtureRepo } from "../support/repo.ts";
import { sign, WEBHOOK_SECRET } from "../support/stripe.ts";

export const PROJECT = resolve(import.meta.dirname, "../../..");
const TSX = import.meta.resolve("tsx");

/**
 * The port a control plane started with PORT=0 listens on, from its `listening` log line (pino
 * JSON) in `output`; undefined until that line is there.
 */
export function listeningPortIn(output: string): number | undefined {
  for (const line of output.split("\n")) {
    if (!line.includes('"listening"')) continue;
    try {
      const parsed = JSON.parse(line) as { msg?: unknown; port?: unknown };
      if (parsed.msg === "listening" && typeof parsed.port === "number" && parsed.port > 0) return parsed.port;
    } catch {
      // not a log line
    }
  }
  return undefined;
}

/** Everything one suite's control plane keeps between its lives: one data directory, one repo. */
export interface Installation {
  tmp: string;
  repo: FixtureRepo;
  /** Bare repository the working copy pushes to (TENANCY_GIT_REMOTE=origin). */
  remote: string;
  dataDir: string;
  stateDir: string;
  /** TMPDIR of every life (and what it starts): removed with the installation, never the host's /tmp. */
  tmpDir: string;
  apiKey: string;
  env: Record<string, string>;
  dispose(): void;
}

export function makeInstallation(fake: Omit<FakePulumiOptions, "stateDir"> = {}, extraEnv: Record<string, string> = {}): Installation {
  const tmp = mkdtempSync(join(reachableTempDir(serverUser()), "tenancy-crash-"));
  chmodSync(tmp, 0o755);
  const repoDir = join(tmp, "repo");
  mkdirSync(repoDir);
  const repo = makeFixtureRepo(repoDir);
  const remote = join(tmp, "remote.git");
  repo.git("init", "--quiet", "--bare", remote);
  repo.git("remote", "add", "origin", remote);
  repo.git("push", "--quiet", "origin", "main");
  const stateDir = join(tmp, "pulumi-state");
  const tmpDir = join(tmp, "tmp");
  mkdirSync(tmpDir);
  // Event-log channel (CLI 3.205): an orphaned CLI of a killed control plane finishes on its own
  // instead of waiting on a gRPC server that is gone.
  const cli = installFakePulumiBinary(join(tmp, "pulumi"), { stateDir, version: "3.205.0", ...fake });
  const key = newApiKey("crash-suite", ["admin"]);
  writeFileSync(join(tmp, "api-keys.yaml"), `keys:\n${key.yaml}\n`);
  writeFileSync(join(tmp, "prices.yaml"), "price_standard_monthly: standard\nprice_enterprise: enterprise\n");
  const env: Record<string, string> = {
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    TENANCY_PRICE_TIERS: join(tmp, "prices.yaml"),
    TENANCY_API_KEYS: join(tmp, "api-keys.yaml"),
    TENANCY_REPO_DIR: repoDir,
    TENANCY_DATA_DIR: join(tmp, "data"),
    TENANCY_PULUMI_ROOT: join(tmp, "pulumi"),
    TENANCY_GIT_REMOTE: "origin",
    TMPDIR: tmpDir,
    HOST: "127.0.0.1",
    TENANCY_METRICS_PORT: "main",
    // Short enough that a killed life's runs are taken over within each life, long enough that a
    // live worker on a loaded CI host is not taken for dead (that takeover is tested in
    // test/automation/runs.test.ts; here every worker that loses a run was killed).
    TENANCY_HEARTBEAT_SECONDS: "0.5",
    TENANCY_HEARTBEAT_TIMEOUT_SECONDS: "5",
    TENANCY_UPDATE_RETRY_BASE_MS: "50",
    TENANCY_SHUTDOWN_GRACE_SECONDS: "0",
    TENANCY_DRIFT_PERIOD_HOURS: "0",
    TENANCY_LIFECYCLE_WORKER: "off",
    TENANCY_UNPAID_GRACE_HOURS: "0",
    ...extraEnv,
  };
  return {
    tmp,
    repo,
    remote,
    dataDir: join(tmp, "data"),
    stateDir,
    tmpDir,
    apiKey: key.key,
    env,
    dispose() {
      cli.dispose();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * Temporary directories the lives left behind: the Automation API's (`automation-*`, among them
 * the event-log directories `automation-logs-<command>-*` a killed process never removes) and the
 * CLI's (`pulumi-*`) in the lives' TMPDIR, and any process directory under `<dataDir>/work`
 * (automation/tempDir.ts). After a life stopped cleanly there must be none: it removed its own
 * directory and, at its start, those of the killed lives before it.
 */
export function leftoverTempDirs(inst: Installation): string[] {
  const work = join(inst.dataDir, WORK_DIR);
  return [
    ...readdirSync(inst.tmpDir).filter((n) => /^(automation-|pulumi-)/.test(n)).map((n) => join(inst.tmpDir, n)),
    ...(existsSync(work) ? readdirSync(work).map((n) => join(work, n)) : []),
  ];
}

/** The embedded server's URL while a life of `inst` runs (port from postmaster.pid, password from the data dir). */
export function embeddedUrl(inst: Installation): string {
  const dir = join(inst.dataDir, "postgres");
  const port = readFileSync(join(dir, "data", "postmaster.pid"), "utf8").split("\n")[3]!.trim();
  const password = readFileSync(join(dir, "password"), "utf8").trim();
  return `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${EMBEDDED_DATABASE}`;
}

/** Queries on the control plane's embedded database while a life runs, one connection each. */
export function embeddedSql(inst: Installation): { url(): string; query<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]> } {
  return {
    url: () => embeddedUrl(inst),
    async query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
      const c = new pg.Client({ connectionString: embeddedUrl(inst) });
      c.on("error", () => undefined);
      await c.connect();
      try {
        return (await c.query<T>(text, values)).rows;
      } finally {
        await c.end();
      }
    },
  };
}

/** The environment of this process minus what would point the child elsewhere. */
function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === "DATABASE_URL" || k.startsWith("TENANCY_") || k === "PORT" || k === "LOG_LEVEL") continue;
    out[k] = v;
  }
  return out;
}

export interface Life {
  child: ChildProcess;
  /** The API's URL, known once the life logged `listening` (it listens on a port the system chose). */
  readonly baseUrl: string;
  /** stdout (pino JSON lines) and stderr, as received. */
  output(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first whole stdout line (pino JSON) whose `msg` is `msg`, seen so far or later; never rejects. */
  logged(msg: string): Promise<Record<string, unknown>>;
}

/** Starts `automation/main.ts` (what `npm run control-plane` runs) with `crashAt` armed, if given. */
export async function startLife(inst: Installation, crashAt?: string, env: Record<string, string> = {}): Promise<Life> {
  // PORT=0: the control plane binds a port the system chooses and names it in its `listening`
  // line. A port chosen here and bound by the child seconds later (after its database is up) could
  // be taken in between by any of the processes the concurrent scenarios start.
  let port: number | undefined;
  const child = spawn(process.execPath, ["--import", TSX, join(PROJECT, "automation", "main.ts")], {
    cwd: inst.tmp,
    env: { ...baseEnv(), ...inst.env, PORT: "0", LOG_LEVEL: "info", ...(crashAt ? { TENANCY_CRASH_AT: crashAt } : {}), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let partial = "";
  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  child.stdout.on("data", (c: Buffer) => {
    const text = c.toString();
    out += text;
    const parts = (partial + text).split("\n");
    partial = parts.pop()!;
    for (const part of parts) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(part) as Record<string, unknown>;
      } catch {
        continue; // not a log line
      }
      lines.push(line);
      if (line.msg === "listening" && typeof line.port === "number") port = line.port;
      for (const w of waiters.filter((w) => w.msg === line.msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const logged = (msg: string) => {
    const seen = lines.find((l) => l.msg === msg);
    return seen ? Promise.resolve(seen) : new Promise<Record<string, unknown>>((resolve) => waiters.push({ msg, resolve }));
  };
  return {
    child,
    get baseUrl() {
      if (port === undefined) throw new Error("control plane: no `listening` line yet, so no port to reach it on");
      return `http://127.0.0.1:${port}`;
    },
    output: () => out + err,
    stderr: () => err,
    exited,
    logged,
  };
}

/**
 * How long a start-up may take before the test gives up on it: a bound against a hang, not a
 * performance check. A start on a loaded CI host (load 20+ on two cores: tsx compiling the control
 * plane, initdb or the orphaned server's shutdown, migrations) took over 90 s; a start that fails
 * ends the wait at once (the process exits), so only a hang ever waits this long.
 */
export const START_BOUND_MS = 300_000;

/** True while the process has neither exited nor been killed. */
export function running(life: Life): boolean {
  return life.child.exitCode === null && life.child.signalCode === null;
}

/**
 * Waits until the control plane says it is ready (its own `listening` log line, written by
 * automation/main.ts once everything has started) and GET /healthz answers 200 {status: ok}.
 * Fails at once, with the output, when the process exits first; and after `boundMs` (a hang).
 */
export async function waitReady(life: Life, boundMs = START_BOUND_MS): Promise<void> {
  const deadline = Date.now() + boundMs;
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<"bound">((r) => (timer = setTimeout(() => r("bound"), boundMs)));
  try {
    const first = await Promise.race([life.logged("listening").then(() => "ready" as const), life.exited.then(() => "exited" as const), bound]);
    if (first === "exited") throw new Error(`control plane exited before it was ready:\n${life.output().slice(-4000)}`);
    if (first === "bound") throw new Error(`control plane not ready (no "listening" log line) within ${boundMs} ms:\n${life.output().slice(-4000)}`);
    for (;;) {
      const health = await healthz(life);
      if (health.ok) return;
      if (!running(life)) throw new Error(`control plane exited before /healthz answered ok:\n${life.output().slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`control plane listening but /healthz not ok within ${boundMs} ms (${health.detail}):\n${life.output().slice(-4000)}`);
      await sleep(200);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** One GET /healthz: ok when it answers 200 {status: ok}. */
export async function healthz(life: Life): Promise<{ ok: boolean; detail: string }> {
  try {
    const res = await fetch(`${life.baseUrl}/healthz`);
    const text = await res.text();
    return { ok: res.status === 200 && (JSON.parse(text) as { status?: string }).status === "ok", detail: `${res.status} ${text}` };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

/**
 * Waits for the process to die by SIGKILL at `point` (its stderr names the point). After
 * `boundMs` without it, `diagnose` (if given) describes the state while the process still runs,
 * then the process is killed and the wait fails with both.
 */
export async function waitKilledAt(life: Life, point: string, boundMs: number, diagnose?: () => Promise<string>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), boundMs)));
  const r = await Promise.race([life.exited, bound]);
  clearTimeout(timer);
  if (r === "timeout") {
    const state = diagnose ? await diagnose().catch((err: unknown) => `(diagnosis failed: ${(err as Error).message})`) : "";
    life.child.kill("SIGKILL");
    await life.exited;
    throw new Error(`crash point ${point} not reached within ${boundMs} ms:\n${state}\n${life.output().slice(-6000)}`);
  }
  if (r.signal !== "SIGKILL" || !life.stderr().includes(`crash point ${point} reached`)) {
    throw new Error(`expected death by SIGKILL at ${point}, got ${JSON.stringify(r)}:\n${life.output().slice(-6000)}`);
  }
}

/** Stops with SIGTERM as an operator would; resolves to the exit code. */
export async function stopLife(life: Life, timeoutMs = 30_000): Promise<number | null> {
  life.child.kill("SIGTERM");
  const timeout = sleep(timeoutMs).then(() => "timeout" as const);
  const r = await Promise.race([life.exited, timeout]);
  if (r === "timeout") {
    life.child.kill("SIGKILL");
    await life.exited;
    throw new Error(`control plane did not exit within ${timeoutMs} ms of SIGTERM:\n${life.output().slice(-4000)}`);
  }
  return r.code;
}

/**
 * Waits until every Pulumi CLI process the control plane started has ended (a killed control
 * plane's CLI finishes on its own), at the end of a scenario, so no process outlives the test.
 * Not between lives: a run's takeover must itself end a CLI the killed life left running.
 */
export async function waitCliProcessesGone(inst: Installation, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pids = new Set(commandLog(inst.stateDir).map((c) => c.pid));
  for (const pid of pids) {
    while (isProcessAlive(pid)) {
      if (Date.now() > deadline) {
        process.kill(pid, "SIGKILL");
        throw new Error(`Pulumi CLI process ${pid} still running ${timeoutMs} ms after the control plane died`);
      }
      await sleep(50);
    }
  }
}

/**
 * Stops a PostgreSQL server a killed life left behind (postmaster.pid of the data directory), at
 * the end of the suite: the next life would have done it; nothing may outlive the test.
 */
export async function stopLeftoverPostgres(inst: Installation): Promise<void> {
  const pidFile = join(inst.dataDir, "postgres", "data", "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return;
  process.kill(pid, "SIGINT");
  for (let i = 0; i < 200 && isProcessAlive(pid); i++) await sleep(50);
  if (isProcessAlive(pid)) process.kill(pid, "SIGKILL");
}

export interface Delivery {
  status: number;
  json: Record<string, unknown>;
}

/** Delivers a Stripe event as Stripe does (signed raw body); undefined when the connection was cut. */
export async function deliver(life: Life, event: Record<string, unknown>): Promise<Delivery | undefined> {
  const body = JSON.stringify(event);
  try {
    const res = await fetch(`${life.baseUrl}/webhooks/stripe`, {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": sign(body) },
      body,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

export async function api<T = Record<string, unknown>>(life: Life, inst: Installation, path: string): Promise<{ status: number; json: T }> {
  const res = await fetch(`${life.baseUrl}${path}`, { headers: { "x-api-key": inst.apiKey } });
  return { status: res.status, json: (await res.json()) as T };
}
