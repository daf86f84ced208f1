/**
 * Migration slots on the tenant database itself (docs/schema-migrations.md, "At most K at once on
 * one database"): a session first holds one of K session-level advisory locks `(SLOT_CLASS,
 * 0..K-1)` in that database before it migrates a schema, and keeps it until it closes (the
 * migrator's sessions only ever migrate). However many control-plane processes, engines or
 * migrators there are, no more than K sessions hold a slot at once, so no more than K migrations
 * run there at once.
 *
 * Why locks on the tenant database and not rows in the control plane's: a slot must live exactly
 * as long as the migration's session. A worker killed mid-migration leaves its claim `running`
 * until its lease runs out, but its backend may still be executing the migration (PostgreSQL only
 * notices a vanished client when it next reads from or writes to the socket; its statement runs
 * on until it finishes or statement_timeout ends it). A row-based slot freed at lease expiry would
 * let a takeover start a K+1st migration beside that backend; the advisory lock stays held until
 * the backend really ends, and is released by PostgreSQL when it does: never leaked.
 *
 * Waiting for "any one of K" locks is not something PostgreSQL offers, so a session tries the K
 * locks in one statement and polls with a growing pause while all are held, up to `waitMs`. The
 * try is in the WHERE of a function scan under LIMIT 1 with nothing between them: the executor
 * filters row by row and stops at the first granted lock. An ORDER BY (a sort reads every row
 * first) or the lock in the select list would take several (the PostgreSQL manual's warning on
 * advisory locks with LIMIT); the tests compare the slot holders with the migrations in flight.
 */
import type pg from "pg";

/** First key of the two-int advisory locks used as slots (classid in pg_locks); the slot index is the second (objid). */
export const SLOT_CLASS = 0x7e5c_0a01;
/** Pause between two tries while every slot is held: grows from the first to the last. */
const POLL_MS = [25, 50, 100, 200, 400, 800] as const;

/** Every slot stayed held for the whole wait (a failure of that schema, recorded like any other). */
export class NoSlotError extends Error {}

/** Takes one of `k` slots on the session's database; throws NoSlotError naming the holders when none freed within `waitMs`. */
export async function acquireSlot(c: pg.ClientBase, k: number, waitMs: number): Promise<number> {
  const until = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    const { rows } = await c.query<{ slot: number }>(
      "SELECT s AS slot FROM generate_series(0, $2::integer - 1) AS s WHERE pg_try_advisory_lock($1::integer, s) LIMIT 1",
      [SLOT_CLASS, k],
    );
    if (rows[0]) return rows[0].slot;
    if (Date.now() >= until) {
      const holders = await slotHolders(c);
      throw new NoSlotError(
        `no migration slot of ${k} freed on database ${holders.database} within ${waitMs} ms; held by ` +
          (holders.sessions.length > 0 ? holders.sessions.map((h) => `pid ${h.pid} (${h.state}, since ${h.since})`).join(", ") : "sessions that ended meanwhile") +
          `; the schema was not touched and runs again on a resume (tenantctl db resume) or the next migration`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS[Math.min(attempt, POLL_MS.length - 1)]!, Math.max(0, until - Date.now()))));
  }
}

/** The sessions holding a slot in the session's database now (for errors and tests). */
export async function slotHolders(c: pg.ClientBase): Promise<{ database: string; sessions: { pid: number; slot: number; state: string; since: string }[] }> {
  const { rows } = await c.query<{ database: string; pid: number | null; slot: number | null; state: string | null; since: Date | null }>(
    `SELECT current_database() AS database, l.pid, l.objid::integer AS slot, a.state, a.xact_start AS since
       FROM (SELECT 1) one
       LEFT JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                           AND l.classid = $1::bigint::oid AND l.objsubid = 2
       LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      ORDER BY l.objid`,
    [SLOT_CLASS],
  );
  return {
    database: rows[0]!.database,
    sessions: rows.filter((r) => r.pid !== null).map((r) => ({ pid: r.pid!, slot: r.slot!, state: r.state ?? "unknown", since: r.since ? r.since.toISOString() : "unknown" })),
  };
}
