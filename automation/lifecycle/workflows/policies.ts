/**
 * Step policies per kind of step (timeout, attempts, backoff; StepPolicy in ../engine/engine.ts). A
 * workflow declares one beside each step. The attempts and backoff match the engine's defaults
 * (5 attempts, 1, 2, 4 ... minutes up to an hour), so an operator's TENANCY_LIFECYCLE_MAX_ATTEMPTS
 * still caps them; the timeouts are what differs per kind. docs/durable-execution.md says why.
 */
import type { StepPolicy } from "../engine/engine.ts";

const MINUTE = 60_000;
const RETRY = { maxAttempts: 5, backoff: { initialMs: MINUTE, maxMs: 60 * MINUTE } } as const;

/** Reads and commits tenant files (git, local disk): seconds; minutes mean git is stuck on a lock. */
export const FILE_COMMIT: StepPolicy = { ...RETRY, timeoutMs: 5 * MINUTE };

/**
 * `pulumi up` of the tenant's stacks through the run queue, then database checks. The queue may
 * hold the run behind the stack's earlier runs, and an RDS modification takes tens of minutes:
 * three hours before an attempt is abandoned (and the run queue's own cancel applies).
 */
export const STACK_RUN: StepPolicy = { ...RETRY, timeoutMs: 180 * MINUTE };

/**
 * Credential rotation: a Secrets Manager call and a short database session per environment;
 * ten minutes means a database or AWS is not answering.
 */
export const CREDENTIAL_STEP: StepPolicy = { ...RETRY, timeoutMs: 10 * MINUTE };
