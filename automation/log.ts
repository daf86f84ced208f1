/**
 * Structured logs (pino). The tenant id and run id ride in an AsyncLocalStorage context that a
 * pino mixin adds to every line: code that works for a tenant or a run wraps itself in
 * withLogContext and every line it (or anything it calls) writes carries both keys, null when
 * the line is about neither.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

export interface LogContext {
  tenantId?: string;
  runId?: string;
  /** Billing event or API request that caused the work. */
  eventId?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...ctx }, fn);
}

export function logContext(): LogContext {
  return storage.getStore() ?? {};
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "tenancy-control-plane" },
    mixin: () => {
      const ctx = storage.getStore();
      return { tenantId: ctx?.tenantId ?? null, runId: ctx?.runId ?? null, ...(ctx?.eventId ? { eventId: ctx.eventId } : {}) };
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
