/** What the runners share: cancellation, waiting, and reading the CLI's errors. */
import type { PulumiCommand } from "@pulumi/pulumi/automation/index.js";

export class RunCancelledError extends Error {}

/**
 * The abort reason of an attempt whose run another worker took over (its heartbeats were late).
 * That attempt stops its own CLI command and nothing else: `pulumi cancel` cancels whatever update
 * holds the stack (Pulumi Cloud) or deletes every lock file of it (the DIY backend's
 * CancelCurrentUpdate, pkg/backend/diy/backend.go), which by then may be the new attempt's.
 */
export class RunTakenOverError extends Error {}

/** How much of a run's output is kept with it. */
export const TAIL = 8_000;

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolveSleep, reject) => {
    if (signal.aborted) return reject(new RunCancelledError("cancelled while waiting to retry"));
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolveSleep();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new RunCancelledError("cancelled while waiting to retry"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The useful line of an error; for a CLI CommandError ("code: ..\n stdout: ..\n stderr: .."), its stderr. */
export function firstLine(err: unknown): string {
  const text = String((err as Error)?.message ?? err);
  const stderr = /\n stderr: ([\s\S]*?)(?:\n err\?: |$)/.exec(text)?.[1];
  const from = stderr && stderr.trim() !== "" ? stderr : text;
  return from.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
}

/**
 * The CLI with a fresh AbortSignal per command, linked to the run's signal and unlinked when the
 * command ends. The Automation API (automation/cmd.js, exec) adds an abort listener to the signal
 * it is given for every CLI command and never removes it; on the run's own signal they pile up
 * (one per command and retry), hold the finished child processes, and trip Node's
 * MaxListenersExceededWarning after ten.
 */
/** PulumiCommand's `run` (marked internal in its .d.ts; cmd.js `PulumiCommand.run`). */
type CliRun = (
  args: string[], cwd: string, additionalEnv: Record<string, string>,
  onOutput?: (data: string) => void, onError?: (data: string) => void, signal?: AbortSignal,
) => Promise<unknown>;

export function signalPerCommand(cmd: PulumiCommand): PulumiCommand {
  const run = (cmd as unknown as { run: CliRun }).run.bind(cmd);
  const wrapped = Object.create(cmd) as PulumiCommand;
  const perCommand: CliRun = async (cmdArgs, cwd, env, onOutput, onError, signal) => {
    if (!signal) return run(cmdArgs, cwd, env, onOutput, onError);
    const own = new AbortController();
    const forward = () => own.abort(signal.reason);
    if (signal.aborted) own.abort(signal.reason);
    else signal.addEventListener("abort", forward, { once: true });
    try {
      return await run(cmdArgs, cwd, env, onOutput, onError, own.signal);
    } finally {
      signal.removeEventListener("abort", forward);
    }
  };
  Object.defineProperty(wrapped, "run", { value: perCommand });
  return wrapped;
}
