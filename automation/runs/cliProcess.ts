/**
 * The Pulumi CLI processes of a run attempt (docs/control-plane.md, "After a crash"): each command
 * starts in a process group of its own and is recorded with the attempt (pid, start time, host),
 * so that the attempt taking a run over can find a CLI the dead attempt left running and end it
 * before it starts its own update: the CLI is not a child that dies with the control plane; a
 * `kill -9` of the Node process leaves it running (re-parented to init), and its update would
 * overlap the new attempt's.
 *
 * Why not the backend's lock alone: the DIY backend's lock file (pkg/backend/diy/lock.go) names
 * the pid and host that wrote it but is never checked for liveness, so a lock left by a dead CLI
 * blocks the stack until `pulumi cancel`, which deletes every lock of the stack, the live
 * orphan's included (diyBackend.CancelCurrentUpdate, pkg/backend/diy/backend.go); Pulumi Cloud
 * answers 409 while any update is in progress and its `cancel` ends the update whoever runs it.
 * Neither tells the taking-over worker whether the update's process still runs; the pid recorded
 * here, checked on the same host, does.
 */
import { spawn } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname } from "node:os";
import { delimiter, dirname, isAbsolute } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { isProcessAlive } from "../processAlive.ts";

/** Where a process runs: a pid means something only on the same host, boot and PID namespace. */
export interface HostIdentity {
  name: string;
  /** /proc/sys/kernel/random/boot_id; null without /proc. */
  bootId: string | null;
  /** The PID namespace (readlink /proc/self/ns/pid, e.g. `pid:[4026531836]`); null without /proc. */
  pidNamespace: string | null;
}

/** One Pulumi CLI command of a run attempt, as recorded in the attempt log (AttemptRecord.cli). */
export interface CliProcess {
  pid: number;
  /** Its process group: the CLI is started as a group leader, so the group id is its pid. */
  pgid: number;
  /** Start time in clock ticks after boot (/proc/<pid>/stat, field 22): a reused pid has another. Null without /proc. */
  startTicks: string | null;
  host: HostIdentity;
  /** The CLI's subcommand (up, destroy, preview, cancel, ...). */
  command: string;
  startedAt: string;
}

function readOrNull(read: () => string): string | null {
  try {
    return read().trim();
  } catch {
    return null;
  }
}

export function thisHost(): HostIdentity {
  return {
    name: hostname(),
    bootId: readOrNull(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8")),
    pidNamespace: readOrNull(() => readlinkSync("/proc/self/ns/pid")),
  };
}

function sameHost(a: HostIdentity, b: HostIdentity): boolean {
  return a.name === b.name && a.bootId === b.bootId && a.pidNamespace === b.pidNamespace;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | null {
  const stat = readOrNull(() => readFileSync(`/proc/${pid}/stat`, "utf8"));
  if (stat === null) return null;
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Field 22 (starttime) of /proc/<pid>/stat; null when unreadable. */
export function processStartTicks(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

/**
 * Whether the recorded process still runs: `elsewhere` when it was started on another host (its
 * pid cannot be checked from here), `gone` when no process has that pid, the pid now belongs to
 * a process started at another time, or it is a zombie.
 */
export function cliState(p: CliProcess, here: HostIdentity = thisHost()): "running" | "gone" | "elsewhere" {
  if (!sameHost(p.host, here)) return "elsewhere";
  if (!isProcessAlive(p.pid)) return "gone";
  const fields = statFields(p.pid);
  if (fields === null) return p.startTicks === null ? "running" : "gone";
  if (fields[0] === "Z") return "gone";
  return p.startTicks === null || fields[19] === p.startTicks ? "running" : "gone";
}

/** PulumiCommand's `run` (cmd.js; marked internal in its typings). */
export type CliRun = (
  args: string[], cwd: string, additionalEnv: Record<string, string>,
  onOutput?: (data: string) => void, onError?: (data: string) => void, signal?: AbortSignal,
) => Promise<unknown>;

interface CommandResultLike {
  stdout: string;
  stderr: string;
  code: number;
}

// What PulumiCommand.run returns and throws (automation/cmd.js CommandResult, automation/errors.js
// createCommandError): exported by the modules, left out of their typings. The error class
// (ConcurrentUpdateError, StackNotFoundError, ...) is what LocalWorkspace and the runner act on.
const require = createRequire(import.meta.url);
const { CommandResult } = require("@pulumi/pulumi/automation/cmd.js") as {
  CommandResult: new (stdout: string, stderr: string, code: number, err?: Error) => CommandResultLike;
};
const { createCommandError } = require("@pulumi/pulumi/automation/errors.js") as {
  createCommandError: (result: CommandResultLike) => Error;
};

/**
 * The CLI `cmd` with its commands started the way PulumiCommand.run starts them (the same
 * arguments, `--non-interactive`, PATH and PULUMI_AUTOMATION_API; cmd.js `run` and `exec`) but
 * as the leader of a new process group (`detached`), reporting each process to `onStart` as soon
 * as it exists. An abort sends SIGINT to the CLI, as the Automation API does (its graceful
 * cancellation).
 */
export function trackedCommand(cmd: PulumiCommand, onStart: (p: CliProcess) => void): PulumiCommand {
  const host = thisHost();
  const run: CliRun = (args, cwd, additionalEnv, onOutput, onError, signal) =>
    new Promise((resolve, reject) => {
      if (!args.includes("--non-interactive")) args.push("--non-interactive");
      const env: Record<string, string | undefined> = { ...process.env, ...additionalEnv, PULUMI_AUTOMATION_API: "true" };
      if (isAbsolute(cmd.command)) env.PATH = `${dirname(cmd.command)}${delimiter}${additionalEnv.PATH ?? process.env.PATH ?? ""}`;
      const child = spawn(cmd.command, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        stdout += d;
        onOutput?.(d);
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
        onError?.(d);
      });
      const onAbort = () => child.kill("SIGINT");
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) onAbort();
      let failed: Error | undefined;
      child.once("error", (err) => (failed = err));
      child.once("close", (code, sig) => {
        signal?.removeEventListener("abort", onAbort);
        if (failed) return reject(createCommandError(new CommandResult(stdout, failed.message, -2, failed)));
        const result = new CommandResult(stdout, sig ? `${stderr}\nkilled by ${sig}` : stderr, code ?? -1);
        if (result.code !== 0) reject(createCommandError(result));
        else resolve(result);
      });
      if (child.pid !== undefined) {
        onStart({ pid: child.pid, pgid: child.pid, startTicks: processStartTicks(child.pid), host, command: args[0] ?? "", startedAt: new Date().toISOString() });
      }
    });
  const wrapped = Object.create(cmd) as PulumiCommand;
  Object.defineProperty(wrapped, "run", { value: run });
  return wrapped;
}

/** How long a taking-over attempt lets a dead attempt's CLI run (LeftoverCliOptions). */
export interface LeftoverCliOptions {
  /** Left to finish on its own (the update may be ending; its result is then recorded, not repeated). */
  waitMs: number;
  /** After SIGINT to its group (Pulumi's graceful cancellation: in-flight steps finish, the state is written, the lock released). */
  interruptMs: number;
}

/**
 * Default: 30 s to finish on its own, then 30 min after SIGINT (an in-flight RDS modification can
 * take that long), then SIGKILL to the group.
 */
export const DEFAULT_LEFTOVER_CLI: LeftoverCliOptions = { waitMs: 30_000, interruptMs: 30 * 60_000 };

export type LeftoverOutcome = "gone" | "elsewhere" | "ended" | "interrupted" | "killed";

function signalGroup(p: CliProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-p.pgid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

async function waitGone(p: CliProcess, ms: number, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (cliState(p) !== "running") return true;
    if (Date.now() >= deadline) return false;
    await delay(100, undefined, { signal });
  }
}

/**
 * Ends a dead attempt's CLI process that still runs on this host: waits `waitMs` for it to end,
 * then SIGINT to its process group and `interruptMs` more, then SIGKILL to the group. Its group is
 * signalled only after checking that the pid is still the recorded process (start time). A
 * process on another host is `elsewhere`: nothing can be done from here (docs/control-plane.md).
 */
export async function endLeftoverCli(p: CliProcess, opts: LeftoverCliOptions, signal: AbortSignal): Promise<LeftoverOutcome> {
  const state = cliState(p);
  if (state !== "running") return state;
  if (await waitGone(p, opts.waitMs, signal)) return "ended";
  if (cliState(p) === "running") signalGroup(p, "SIGINT");
  if (await waitGone(p, opts.interruptMs, signal)) return "interrupted";
  if (cliState(p) === "running") signalGroup(p, "SIGKILL");
  await waitGone(p, 10_000, signal);
  return "killed";
}
