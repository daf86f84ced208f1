/**
 * A test double of the Pulumi CLI (this file: the CLI's behaviour; fakePulumi.ts: how the
 * Automation API gets it), for the Automation API's own extension point (the
 * `pulumiCommand` option of LocalWorkspace): the real LocalWorkspace/Stack code builds the real
 * command lines, parses the answers, classifies errors (createCommandError) and receives engine
 * events through its real channel: a gRPC Events server for CLI versions above 3.205, a tailed
 * `--event-log` file at or below. What the double does NOT do: run the Pulumi program, talk to
 * AWS, or keep real state. Its engine events are synthetic (resource type
 * `saas-tenancy:test:FakeTenantResource`, one per tenant the stack renders according to the
 * tenant files in the checkout), so no test can mistake them for a deployment.
 *
 * State lives in `stateDir` (shared by processes): one JSON file per stack, written whole (a
 * temporary file renamed over it, as gocloud.dev/blob/fileblob, the DIY backend's file:// bucket,
 * writes), lock files while an update runs and commands.jsonl, the log of every command. Locks
 * follow the DIY backend (pkg/backend/diy/lock.go): one file per CLI process
 * (`locks/<stack>/<lock id>.json`, content {pid, username, hostname, timestamp}), written after
 * checking for other processes' files and removed by the process at the end; a process killed
 * mid-update leaves its file behind, and every later update of the stack is refused ("the stack
 * is currently locked by 1 lock(s) ... `pulumi cancel`") until `pulumi cancel` deletes ALL the
 * stack's lock files (diyBackend.CancelCurrentUpdate, pkg/backend/diy/backend.go), whether their
 * process is alive or not, and succeeds when there are none. Every update also leaves a marker
 * under running/ while it runs, and one that starts while another of its stack runs is recorded
 * in overlaps.jsonl (overlappingUpdates): what no backend may allow. Not modelled: newer CLIs also remove,
 * when checking, a lock of a dead process of the same host (lock.go, processAlive).
 *
 * `stack export` and `state move` work on a stack's `resources`, a deployment's resource list
 * that only tests write (seedResources; `up` never adds any). `state move` follows the rules of
 * pkg/cmd/pulumi/state/state_move.go: listed URNs and their children move, renamed to the
 * destination stack and re-parented to its root stack when their parent stays; a listed provider
 * is refused; no listed URN found is an error; a renamed URN already in the destination is an
 * error. It does not copy providers.
 */
import { createHash, randomUUID } from "node:crypto";
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import type { Tenant } from "../../../infra/model/schema.ts";
import { isProcessAlive } from "../../../automation/processAlive.ts";

const require = createRequire(import.meta.url);
/** The SDK's version: a CLI of the same version is what PulumiCommand.get() expects. */
export const SDK_VERSION: string = (require("@pulumi/pulumi/version.js") as { version: string }).version;

export interface FakePulumiOptions {
  stateDir: string;
  /** Reported by `pulumi version`; default the SDK's (events over gRPC). "3.205.0" selects the event-log file. */
  version?: string;
  /** Delay before each engine event, ms. */
  eventDelayMs?: number;
  /** Stop in the middle of `up` after this many events, until aborted (SIGINT) or killed. */
  hangAfterEvents?: number;
  /** stack -> number of `up` calls answered with the backend's 409 "Another update is currently in progress". */
  conflicts?: Record<string, number>;
  /** stack -> a file path: `up` of the stack waits (abortable) until the file exists, so a test decides when it ends. */
  holdUntil?: Record<string, string>;
  /** stack -> how long its `up` or `preview` takes before the first event, ms (abortable): a simulated duration (benchmarks). */
  durationMs?: Record<string, number>;
  /** stack -> message of a failing update (or drift check: the program fails in preview too). */
  failures?: Record<string, string>;
  /**
   * stack -> resources `preview --refresh` finds changed (drift): the fake tenant resource of
   * `tenant`, planned as an update of the properties `diffs`. Stacks not listed preview clean.
   */
  drift?: Record<string, { tenant: string; diffs: string[] }[]>;
  /**
   * `preview --refresh` also plans every tenant resource of a stack as an update of `program` when
   * the checkout's Pulumi.yaml is not the one the stack's last update ran: what a real preview with
   * another program than the deployed one shows (the engine diffs the program's resources against
   * the state), though this double compares one file only.
   */
  programDrift?: boolean;
  /**
   * `state move` prints its plan and exits 0 but saves neither stack: a CLI or backend that lost
   * the move, which the runner's check afterwards must catch.
   */
  stateMoveSavesNothing?: boolean;
  /**
   * stack -> URL of a live PostgreSQL database standing in for the database the stack's
   * postgresql provider manages: after a successful `up`, each tenant the stack renders has its
   * role there with LOGIN as the stack's TenantDatabaseAccess would set it (applyTenantRoles).
   */
  tenantDatabases?: Record<string, string>;
  /** stack -> its outputs after an up, as `stack output --json` prints them (secret ones as "[secret]" unless --show-secrets). */
  outputs?: Record<string, Record<string, { value: unknown; secret: boolean }>>;
}

/** A resource in a stack's deployment (the fields `stack export` prints that a move uses). */
export interface FakeResource {
  urn: string;
  type: string;
  custom?: boolean;
  id?: string;
  parent?: string;
  provider?: string;
}

export interface RecordedCommand {
  pid: number;
  args: string[];
  cwd: string;
  at: string;
}

export interface FakeStackState {
  name: string;
  /** After a first successful up the stack holds protected resources (like the RDS instances). */
  protected?: boolean;
  destroyed?: boolean;
  /** The deployment's resources (`stack export`), written by seedResources and `state move` only. */
  resources?: FakeResource[];
  updates: {
    kind: "update" | "destroy"; at: string; message: string | null;
    /** When the update began (after the stack's lock was taken): the history's startTime; `at` is its end. */
    startedAt?: string; tenants: string[]; remote: boolean; policyPacks: string[];
    /** sha256 of the checkout's Pulumi.yaml (local runs): which program revision the update ran. */
    program?: string;
  }[];
  /** Previews of a stack that has a state (drift checks), with the sha256 of the checkout's Pulumi.yaml. */
  previews?: { at: string; refresh: boolean; program: string | null }[];
}

export interface FakeResult {
  stdout: string;
  stderr: string;
  code: number;
}

interface Io {
  signal?: AbortSignal;
  onOutput?: (s: string) => void;
}

const ok = (stdout = ""): FakeResult => ({ stdout, stderr: "", code: 0 });
const fail = (stderr: string): FakeResult => ({ stdout: "", stderr, code: 255 });

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
function flags(args: readonly string[], name: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => a === name && args[i + 1] !== undefined && out.push(args[i + 1]!));
  return out;
}
const safe = (stack: string) => stack.replace(/[^\w.-]/g, "_");

export function commandLog(stateDir: string): RecordedCommand[] {
  const file = join(stateDir, "commands.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as RecordedCommand);
}

export function stackState(stateDir: string, stack: string): FakeStackState | undefined {
  const file = join(stateDir, "stacks", `${safe(stack)}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as FakeStackState) : undefined;
}

/**
 * Gives a stack (created when absent, as `stack init` would) these resources, as if updates had
 * created them. Test setup only: nothing was deployed.
 */
export function seedResources(stateDir: string, stack: string, resources: readonly FakeResource[]): void {
  mkdirSync(join(stateDir, "stacks"), { recursive: true });
  const state = stackState(stateDir, stack) ?? { name: stack, updates: [] };
  writeWhole(join(stateDir, "stacks", `${safe(stack)}.json`), JSON.stringify({ ...state, resources }, null, 2));
}

/** The stack's lock directory (one file per CLI process holding or having left a lock). */
function lockDir(stateDir: string, stack: string): string {
  return join(stateDir, "locks", safe(stack));
}

/** The lock files of a stack, with their content (pid of the CLI process that wrote each). */
export function stackLocks(stateDir: string, stack: string): { file: string; pid: number; hostname: string; timestamp: string }[] {
  const dir = lockDir(stateDir, stack);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => {
    const c = JSON.parse(readFileSync(join(dir, f), "utf8")) as { pid: number; hostname: string; timestamp: string };
    return { file: join(dir, f), pid: c.pid, hostname: c.hostname, timestamp: c.timestamp };
  });
}

/** One update or destroy of a stack that overlapped another one of the same stack (overlappingUpdates). */
export interface OverlappingUpdate {
  stack: string;
  kind: "up" | "destroy";
  pid: number;
  /** The processes whose update of the stack was running when this one started. */
  runningPids: number[];
  at: string;
}

/**
 * Marks an update of `stack` as running (a file per update, removed by end()); when another
 * update of the stack is running already (its file is there and its process alive: a process
 * killed mid-update leaves its file), the overlap is appended to overlaps.jsonl. Independent of
 * the locks: it sees two updates at once whatever let the second one in (`pulumi cancel`
 * deleting a live process's lock).
 */
function markRunning(stateDir: string, stack: string, kind: "up" | "destroy"): { end(): void } {
  const dir = join(stateDir, "running", safe(stack));
  mkdirSync(dir, { recursive: true });
  const mine = join(dir, `${process.pid}-${randomUUID().slice(0, 8)}.json`);
  const runningPids = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => (JSON.parse(readFileSync(join(dir, f), "utf8")) as { pid: number }).pid)
    .filter(isProcessAlive);
  writeFileSync(mine, JSON.stringify({ pid: process.pid, at: new Date().toISOString() }));
  if (runningPids.length > 0) {
    const o: OverlappingUpdate = { stack, kind, pid: process.pid, runningPids, at: new Date().toISOString() };
    appendFileSync(join(stateDir, "overlaps.jsonl"), `${JSON.stringify(o)}\n`);
  }
  return { end: () => rmSync(mine, { force: true }) };
}

/** Every update that started while another update of its stack was running (markRunning). */
export function overlappingUpdates(stateDir: string): OverlappingUpdate[] {
  const file = join(stateDir, "overlaps.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as OverlappingUpdate);
}

/** Writes a file whole: a reader sees the old or the new content, never a torn one. */
function writeWhole(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    // The listener goes when the timer fires: one run's signal sees many events, and listeners
    // left behind added up to MaxListenersExceededWarning (11 abort listeners).
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

type Sink = { send(event: object): Promise<void>; close(): Promise<void> };

function eventSink(dest: string | undefined): Sink {
  if (!dest) return { send: async () => undefined, close: async () => undefined };
  if (dest.startsWith("tcp://")) {
    // Loaded only here: the executable double starts faster without gRPC. CommonJS modules whose
    // exports Node's ESM loader cannot see by name, hence require.
    const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
    const { EventsClient } = require("@pulumi/pulumi/proto/events_grpc_pb.js") as typeof import("@pulumi/pulumi/proto/events_grpc_pb.js");
    const { EventRequest } = require("@pulumi/pulumi/proto/events_pb.js") as typeof import("@pulumi/pulumi/proto/events_pb.js");
    const client = new EventsClient(dest.slice("tcp://".length), grpc.credentials.createInsecure());
    let finished!: Promise<void>;
    const call = (() => {
      let resolveDone!: () => void;
      finished = new Promise<void>((r) => (resolveDone = r));
      return client.streamEvents(() => resolveDone());
    })();
    return {
      send: async (event) => {
        call.write(new EventRequest().setEvent(JSON.stringify(event)));
      },
      close: async () => {
        call.end();
        await finished;
        client.close();
      },
    };
  }
  // Opened once and written through that handle, as the CLI does (startEventLogger in
  // pkg/backend/display/display.go: os.Create, then a json.Encoder on the file; a failed write is
  // only logged at -v=7): a CLI whose event-log directory is removed while it runs (its control
  // plane was killed, the next start removed that process's temporary directory) goes on writing
  // to the unlinked file and finishes its update.
  // A file that cannot be created: the CLI goes on without an event log, as there.
  let fd: number;
  try {
    fd = openSync(dest, "a");
  } catch {
    return { send: async () => undefined, close: async () => undefined };
  }
  return {
    send: async (event) => void writeSync(fd, `${JSON.stringify(event)}\n`),
    // The Automation API tails the file every 200 ms; give it time to read the last lines.
    close: () => sleep(450).then(() => closeSync(fd)),
  };
}

/** One CLI invocation: what `pulumi <args>` would print and exit with. */
export async function runFakePulumi(argsIn: readonly string[], cwd: string, opts: FakePulumiOptions, io: Io = {}): Promise<FakeResult> {
  const args = argsIn.filter((a) => a !== "--non-interactive");
  mkdirSync(join(opts.stateDir, "stacks"), { recursive: true });
  mkdirSync(join(opts.stateDir, "locks"), { recursive: true });
  appendFileSync(join(opts.stateDir, "commands.jsonl"), `${JSON.stringify({ pid: process.pid, args, cwd, at: new Date().toISOString() })}\n`);
  const stack = flag(args, "--stack") ?? (args[0] === "stack" && args[1] === "init" ? args[2] : undefined);
  const stateFile = stack ? join(opts.stateDir, "stacks", `${safe(stack)}.json`) : "";
  const readState = (): FakeStackState | undefined => (stack ? stackState(opts.stateDir, stack) : undefined);
  const writeState = (s: FakeStackState) => writeWhole(stateFile, JSON.stringify(s, null, 2));

  const [cmd, sub] = args;
  if (cmd === "version") return ok(`v${opts.version ?? SDK_VERSION}\n`);
  if (cmd === "preview" && sub === "--help") return ok("Usage: pulumi preview [flags]\n      --remote   [EXPERIMENTAL] Run the operation remotely\n");
  if (cmd === "stack" && (sub === "select" || sub === "--stack")) {
    return readState() ? ok() : fail(`error: no stack named '${stack}' found\n`);
  }
  if (cmd === "stack" && sub === "init") {
    if (readState()) return fail(`error: stack '${stack}' already exists\n`);
    writeState({ name: stack!, updates: [] });
    return ok(`Created stack '${stack}'\n`);
  }
  if (cmd === "stack" && sub === "output") {
    const outs = (stack ? opts.outputs?.[stack] : undefined) ?? {};
    const show = args.includes("--show-secrets");
    return ok(`${JSON.stringify(Object.fromEntries(Object.entries(outs).map(([k, o]) => [k, o.secret && !show ? "[secret]" : o.value])))}\n`);
  }
  if (cmd === "stack" && sub === "history") {
    const last = readState()?.updates.at(-1);
    if (!last) return ok("[]\n");
    const n = readState()!.updates.length;
    return ok(JSON.stringify([{
      version: n, kind: last.kind, startTime: last.startedAt ?? last.at, endTime: last.at, message: last.message ?? "", environment: { "exec.kind": "auto.local" },
      config: {}, result: "succeeded", resourceChanges: { [n === 1 ? "create" : "same"]: last.tenants.length },
    }]));
  }
  if (cmd === "cancel") {
    // diyBackend.CancelCurrentUpdate: every lock file of the stack goes, none is no error.
    for (const l of stackLocks(opts.stateDir, stack!)) rmSync(l.file, { force: true });
    return ok(`The currently running update for '${stack}' has been canceled!\n`);
  }
  if (cmd === "state" && sub === "unprotect") {
    const st = readState();
    if (!st) return fail(`error: no stack named '${stack}' found\n`);
    writeState({ ...st, protected: false });
    return ok("Unprotected all resources\n");
  }
  if (cmd === "stack" && sub === "export") {
    const st = readState();
    if (!st) return fail(`error: no stack named '${stack}' found\n`);
    const deployment = {
      manifest: { time: new Date().toISOString(), magic: "", version: "saas-tenancy test double" },
      ...(st.resources ? { resources: st.resources } : {}),
    };
    return ok(`${JSON.stringify({ version: 3, deployment }, null, 4)}\n`);
  }
  if (cmd === "state" && sub === "move") return stateMove(args.slice(2), opts);
  if (cmd === "up" || cmd === "destroy") return operation(cmd, args, cwd, stack, opts, io, readState, writeState);
  if (cmd === "preview") return preview(args, cwd, stack, opts, io, readState, writeState);
  return ok();
}

/** `pulumi state move [--source S] [--dest D] [--yes] <urn>...` (see the file's comment). */
function stateMove(rest: readonly string[], opts: FakePulumiOptions): FakeResult {
  const sourceName = flag(rest, "--source");
  const destName = flag(rest, "--dest");
  const urns = rest.filter((a, i) => !a.startsWith("--") && rest[i - 1] !== "--source" && rest[i - 1] !== "--dest");
  if (urns.length === 0) return fail("error: requires at least 1 arg(s), only received 0\n");
  if (!sourceName || !destName) return fail("error: at least one of --source or --dest must be provided\n");
  const source = stackState(opts.stateDir, sourceName);
  if (!source) return fail(`error: no stack named '${sourceName}' found\n`);
  const dest = stackState(opts.stateDir, destName);
  if (!dest) return fail(`error: no stack named '${destName}' found\n`);
  if (!source.resources) return fail("error: source stack has no resources\n");
  if (!rest.includes("--yes")) return fail("error: --yes must be passed in to proceed when running in non-interactive mode\n");

  let out = "";
  const moving = new Set<string>();
  for (const r of source.resources) {
    if (!urns.includes(r.urn)) continue;
    if (r.type.startsWith("pulumi:providers:")) return fail("error: cannot move providers. Only resources can be moved, and providers will be included automatically\n");
    moving.add(r.urn);
  }
  for (const u of urns) if (!moving.has(u)) out += `warning: Resource ${u} not found in source stack\n`;
  if (moving.size === 0) return fail("error: no resources found to move\n");
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of source.resources) {
      if (!moving.has(r.urn) && r.parent !== undefined && moving.has(r.parent)) {
        moving.add(r.urn);
        grew = true;
      }
    }
  }
  const root = source.resources.find((r) => r.type === "pulumi:pulumi:Stack" && r.parent === undefined);
  if (root) moving.delete(root.urn);

  // URNs carry the short stack name; --source/--dest may be fully qualified (org/project/stack).
  const destShort = destName.split("/").at(-1)!;
  const rename = (urn: string) => urn.replace(/^urn:pulumi:[^:]+::/, `urn:pulumi:${destShort}::`);
  const destResources = [...(dest.resources ?? [])];
  let destRoot = destResources.find((r) => r.type === "pulumi:pulumi:Stack" && r.parent === undefined);
  if (!destRoot) {
    const project = /^urn:pulumi:[^:]+::([^:]+)::/.exec([...moving][0]!)![1]!;
    destRoot = { urn: `urn:pulumi:${destShort}::${project}::pulumi:pulumi:Stack::${project}-${destShort}`, type: "pulumi:pulumi:Stack", custom: false };
    destResources.unshift(destRoot);
  }
  const moved = source.resources.filter((r) => moving.has(r.urn));
  out += `Planning to move the following resources from ${sourceName} to ${destName}:\n\n${moved.map((r) => `  - ${r.urn}\n`).join("")}\n`;
  for (const r of moved) {
    const copy: FakeResource = { ...r, urn: rename(r.urn), parent: r.parent !== undefined && moving.has(r.parent) ? rename(r.parent) : destRoot.urn };
    if (destResources.some((d) => d.urn === copy.urn)) return fail(`error: resource ${copy.urn} already exists in destination stack\n`);
    destResources.push(copy);
  }
  if (opts.stateMoveSavesNothing) return ok(out);
  // Like the CLI: the destination is saved first, then the source.
  seedResources(opts.stateDir, destName, destResources);
  seedResources(opts.stateDir, sourceName, source.resources.filter((r) => !moving.has(r.urn)));
  out += `Successfully moved resources from ${sourceName} to ${destName}\n`;
  return ok(out);
}

async function operation(
  kind: "up" | "destroy",
  args: readonly string[],
  cwd: string,
  stack: string | undefined,
  opts: FakePulumiOptions,
  io: Io,
  readState: () => FakeStackState | undefined,
  writeState: (s: FakeStackState) => void,
): Promise<FakeResult> {
  if (!stack) return fail("error: no stack selected\n");
  const state = readState();
  if (!state) return fail(`error: no stack named '${stack}' found\n`);
  if (kind === "destroy" && state.protected) {
    return fail(`error: resource urn:pulumi:${stack}::saas-tenancy::saas-tenancy:test:FakeTenantResource is protected; run \`pulumi state unprotect\` first\n`);
  }
  const remote = args.includes("--remote");
  const packs = flags(args, "--policy-pack");
  for (const p of packs) {
    if (!existsSync(join(p, "PulumiPolicy.yaml"))) return fail(`error: could not load policy pack ${p}: no PulumiPolicy.yaml\n`);
  }
  const conflictFile = join(opts.stateDir, `conflicts-${safe(stack)}.count`);
  const used = existsSync(conflictFile) ? Number(readFileSync(conflictFile, "utf8")) : 0;
  if (used < (opts.conflicts?.[stack] ?? 0)) {
    writeFileSync(conflictFile, String(used + 1));
    return fail("error: [409] Conflict: Another update is currently in progress.\n");
  }
  // diyBackend.Lock: refuse on other processes' locks, write this process's, check again.
  const others = () => stackLocks(opts.stateDir, stack).filter((l) => l.file !== lock);
  const locked = () =>
    fail(
      `error: the stack is currently locked by ${others().length} lock(s). Either wait for the other process(es) to end or delete the lock file with \`pulumi cancel\`.` +
        others().map((l) => `\n  file://${l.file}: created by ${userInfo().username}@${l.hostname} (pid ${l.pid}) at ${l.timestamp}`).join("") + "\n",
    );
  mkdirSync(lockDir(opts.stateDir, stack), { recursive: true });
  const lock = join(lockDir(opts.stateDir, stack), `${randomUUID()}.json`);
  if (others().length > 0) return locked();
  writeFileSync(lock, JSON.stringify({ pid: process.pid, username: userInfo().username, hostname: hostname(), timestamp: new Date().toISOString() }));
  const releaseLock = () => rmSync(lock, { force: true });
  if (others().length > 0) {
    releaseLock();
    return locked();
  }
  const running = markRunning(opts.stateDir, stack, kind);
  const release = () => {
    releaseLock();
    running.end();
  };

  const startedAt = new Date().toISOString();
  let tenants: string[] = [];
  let rendered: Tenant[] = [];
  if (!remote && kind === "up") {
    const { loadFleet, tenantsOfStack } = await import("../../../infra/model/fleet.ts");
    const { fleet, problems } = loadFleet({ projectDir: cwd });
    if (!fleet) {
      release();
      return fail(`error: program failed: ${problems.length} problem(s) in tenant/stack files\n`);
    }
    rendered = tenantsOfStack(fleet, stack);
    tenants = rendered.map((t) => t.id).sort();
  }
  const first = state.updates.length === 0 || state.destroyed === true;
  if (kind === "destroy") tenants = state.updates.at(-1)?.tenants ?? [];
  const op = kind === "destroy" ? "delete" : first ? "create" : "same";
  const sink = eventSink(flag(args, "--event-log"));
  let seq = 0;
  const events: object[] = [{ preludeEvent: { config: {} } }];
  for (const id of tenants) {
    const metadata = { op, urn: `urn:pulumi:${stack}::saas-tenancy::saas-tenancy:test:FakeTenantResource::${id}`, type: "saas-tenancy:test:FakeTenantResource", provider: "" };
    events.push({ resourcePreEvent: { metadata } }, { resOutputsEvent: { metadata } });
  }
  const failure = opts.failures?.[stack];
  if (failure) events.push({ diagnosticEvent: { message: `${failure}\n`, color: "never", severity: "error" } });
  events.push({ summaryEvent: { maybeCorrupt: false, durationSeconds: 0, resourceChanges: { [op]: tenants.length }, policyPacks: {} } });
  events.push({ cancelEvent: {} });

  const gate = kind === "up" ? opts.holdUntil?.[stack] : undefined;
  while (gate !== undefined && !existsSync(gate)) {
    if (!(await sleep(20, io.signal))) break;
  }
  const duration = kind === "up" ? opts.durationMs?.[stack] : undefined;
  if (duration !== undefined) await sleep(duration, io.signal);
  const emitted: object[] = [];
  for (const e of events) {
    if (opts.hangAfterEvents !== undefined && emitted.length === opts.hangAfterEvents) {
      // Mid-update: wait for SIGINT/abort (or for the process to be killed). A timer holds the
      // event loop: an abort listener alone does not, and the executable double exited as soon as
      // its parent's pipes closed (a kill -9 of the worker), the orphan "gone" before the takeover.
      const hold = setInterval(() => undefined, 60_000);
      await new Promise<void>((resolve) => io.signal?.addEventListener("abort", () => resolve(), { once: true }));
      clearInterval(hold);
    }
    if (opts.eventDelayMs && !(await sleep(opts.eventDelayMs, io.signal))) break;
    if (io.signal?.aborted) break;
    const event = { sequence: seq++, timestamp: Math.floor(Date.now() / 1000), ...e };
    await sink.send(event);
    emitted.push(event);
  }
  await sink.close();
  const database = kind === "up" && !io.signal?.aborted && !failure ? opts.tenantDatabases?.[stack] : undefined;
  if (database) await applyTenantRoles(database, stack, rendered);
  release();
  if (io.signal?.aborted) return fail("error: update canceled\n");
  if (failure) return fail(`error: update failed: ${failure}\n`);
  const projectFile = join(cwd, "Pulumi.yaml");
  const program = !remote && existsSync(projectFile) ? { program: createHash("sha256").update(readFileSync(projectFile)).digest("hex") } : {};
  state.updates.push({ kind: kind === "up" ? "update" : "destroy", startedAt, at: new Date().toISOString(), message: flag(args, "--message") ?? null, tenants, remote, policyPacks: packs, ...program });
  state.protected = kind === "up";
  state.destroyed = kind === "destroy";
  writeState(state);
  const out = `${kind === "up" ? "Updating" : "Destroying"} (${stack}) [saas-tenancy test double: nothing was deployed]\nResources:\n    ${tenants.length} ${op}\n`;
  io.onOutput?.(out);
  return ok(out);
}

/**
 * What a stack's postgresql.Role resources do to its tenants' roles (infra/components/
 * tenantDatabaseAccess.ts, `login: databaseLoginAllowed(...)` from pooledTenant.ts and
 * dedicatedTenant.ts): each role exists, with LOGIN or NOLOGIN. Run as the database's admin on a
 * live server; nothing else of the stack is modelled (no schema, grants or limits).
 */
async function applyTenantRoles(url: string, stack: string, rendered: readonly Tenant[]): Promise<void> {
  const { databaseLoginAllowed } = await import("../../../infra/model/database.ts");
  const { pgTenantIdent } = await import("../../../infra/model/naming.ts");
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => undefined);
  await c.connect();
  try {
    const side = stack.startsWith("dedicated-") ? "dedicated" : "cell";
    for (const t of rendered) {
      const role = pgTenantIdent(t.id);
      const login = databaseLoginAllowed(t, side) ? "LOGIN" : "NOLOGIN";
      const exists = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
      await c.query(`${exists.rowCount ? "ALTER" : "CREATE"} ROLE "${role}" ${login}`);
    }
  } finally {
    await c.end();
  }
}

/**
 * `pulumi preview [--refresh]`: plans and changes nothing. With --refresh each tenant resource is
 * refreshed first (op refresh), then planned: `same`, or `update` with its `diffs` when the test
 * declared drift for it. Without --refresh the state is not compared with the cloud, so no drift
 * can show (as with the real CLI).
 */
async function preview(
  args: readonly string[], cwd: string, stack: string | undefined, opts: FakePulumiOptions, io: Io,
  readState: () => FakeStackState | undefined, writeState: (s: FakeStackState) => void,
): Promise<FakeResult> {
  if (!stack) return fail("error: no stack selected\n");
  const { loadFleet, tenantsOfStack } = await import("../../../infra/model/fleet.ts");
  const { fleet } = loadFleet({ projectDir: cwd });
  if (!fleet) return fail("error: program failed: problems in tenant/stack files\n");
  const refresh = args.includes("--refresh");
  const drifted = new Map((refresh ? (opts.drift?.[stack] ?? []) : []).map((d) => [d.tenant, d.diffs]));
  const projectFile = join(cwd, "Pulumi.yaml");
  const program = existsSync(projectFile) ? createHash("sha256").update(readFileSync(projectFile)).digest("hex") : null;
  const state = readState();
  const deployed = state?.updates.findLast((u) => u.kind === "update")?.program;
  if (refresh && opts.programDrift && deployed && program !== deployed) {
    for (const t of tenantsOfStack(fleet, stack)) drifted.set(t.id, [...(drifted.get(t.id) ?? []), "program"]);
  }
  if (state) writeState({ ...state, previews: [...(state.previews ?? []), { at: new Date().toISOString(), refresh, program }] });
  // A declared drift names a resource of the stack even when its tenant files hold no such tenant (benchmarks' made-up stacks).
  const tenants = [...new Set([...tenantsOfStack(fleet, stack).map((t) => t.id), ...drifted.keys()])].sort();
  const duration = opts.durationMs?.[stack];
  if (duration !== undefined) await sleep(duration, io.signal);
  const sink = eventSink(flag(args, "--event-log"));
  const events: object[] = [{ preludeEvent: { config: {} } }];
  const counts: Record<string, number> = {};
  for (const id of tenants) {
    const base = { urn: `urn:pulumi:${stack}::saas-tenancy::saas-tenancy:test:FakeTenantResource::${id}`, type: "saas-tenancy:test:FakeTenantResource", provider: "" };
    if (refresh) events.push({ resourcePreEvent: { metadata: { ...base, op: "refresh" } } });
    const diffs = drifted.get(id);
    const op = diffs ? "update" : "same";
    counts[op] = (counts[op] ?? 0) + 1;
    events.push({ resourcePreEvent: { metadata: { ...base, op, ...(diffs ? { diffs } : {}) } } });
  }
  const failure = opts.failures?.[stack];
  if (failure) events.push({ diagnosticEvent: { message: `${failure}\n`, color: "never", severity: "error" } });
  events.push({ summaryEvent: { maybeCorrupt: false, durationSeconds: 0, resourceChanges: counts, policyPacks: {} } }, { cancelEvent: {} });
  let seq = 0;
  for (const e of events) {
    if (opts.eventDelayMs && !(await sleep(opts.eventDelayMs, io.signal))) break;
    if (io.signal?.aborted) break;
    await sink.send({ sequence: seq++, timestamp: Math.floor(Date.now() / 1000), ...e });
  }
  await sink.close();
  // Interrupted (a check giving way to an update): the real CLI exits non-zero without a summary
  // event, as `up` does; exiting 0 here made the SDK warn "Failed to parse summary event".
  if (io.signal?.aborted) return fail("error: preview canceled\n");
  if (failure) return fail(`error: preview failed: ${failure}\n`);
  return ok(`Previewing update (${stack}) [saas-tenancy test double: nothing was read from a cloud]\n`);
}
