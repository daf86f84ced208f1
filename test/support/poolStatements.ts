/**
 * For tests that count the statements a pg Pool sends (how many round trips an operation takes):
 * every client the pool makes records the text of each query sent through it, and `counted(fn)`
 * returns what `fn` sent, in order. One entry is one `client.query` call, one round trip: a
 * multi-statement text is one entry. `pool.query` goes through a client too, so it is counted.
 */
import type { Pool } from "pg";

export interface PoolStatements {
  /** Runs `fn`, returning its value and the statements sent through the pool meanwhile (by anything using it). */
  counted<T>(fn: () => Promise<T>): Promise<{ value: T; statements: string[] }>;
}

/** Installs the counting on `pool`: call it before the pool makes its first client, or that client is not counted. */
export function countPoolStatements(pool: Pool): PoolStatements {
  let sent: string[] = [];
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      sent.push(String(typeof args[0] === "string" ? args[0] : (args[0] as { text: string }).text));
      return query(...args);
    };
  });
  return {
    async counted<T>(fn: () => Promise<T>) {
      sent = [];
      const value = await fn();
      return { value, statements: [...sent] };
    },
  };
}
