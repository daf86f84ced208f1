/** What the runners share: cancellation, waiting, and reading the CLI's errors. */

export class RunCancelledError extends Error {}

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
