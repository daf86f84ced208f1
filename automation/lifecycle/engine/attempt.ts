/**
 * One attempt of a step under its policy (workflows/policies.ts): the timeout that abandons it and
 * the delay before the next attempt.
 */
import { StepTimeoutError, type StepContext, type StepDef, type StepPolicy, type StepResult } from "./definitions.ts";

/** Retry delay after the n-th failed attempt of a step: 1, 2, 4, ... minutes, at most an hour. */
export function backoffMs(attempt: number): number {
  return Math.min(60, 2 ** Math.max(0, attempt - 1)) * 60_000;
}

/** The delay before the next attempt of a step with `policy` after its n-th failed attempt. */
export function retryDelayMs(policy: StepPolicy | undefined, attempt: number): number {
  if (!policy?.backoff) return backoffMs(attempt);
  return Math.min(policy.backoff.maxMs, policy.backoff.initialMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * Runs one attempt of `step`; with a timeout in its policy, abandons it when the time is up:
 * its signal is aborted (a step that honours it stops) and StepTimeoutError is thrown. JavaScript
 * cannot kill the abandoned promise: steps are idempotent, and their side effects go through
 * ports that take the signal or are safe to repeat.
 */
export async function runAttempt(step: StepDef, ctx: Omit<StepContext, "signal">, cancel?: AbortSignal): Promise<StepResult> {
  const controller = new AbortController();
  // An operator's cancel (engine/cancelWatch.ts) aborts it too; the attempt is then awaited to its
  // end, so the workflow's clean-up runs after the step has released what it held.
  const attempt = step.run({ ...ctx, signal: cancel ? AbortSignal.any([controller.signal, cancel]) : controller.signal });
  const timeoutMs = step.policy?.timeoutMs;
  if (timeoutMs === undefined) return attempt;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new StepTimeoutError(`step ${step.name} did not finish within ${timeoutMs / 1000} s; the attempt was abandoned`);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([attempt, timedOut]);
  } finally {
    clearTimeout(timer);
    // The abandoned attempt may still settle; its outcome is no longer wanted.
    attempt.catch(() => undefined);
  }
}
