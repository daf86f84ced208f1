/**
 * What the lifecycle workflow tests (move, upgrade, their switch window, the move's rollback) look
 * at from outside a scenario (harness.ts): whether the tenant's own credentials log in, the
 * change-capture slots left on a database, the phase the tenant file records, the connection
 * document the application reads, and the application itself writing through that document.
 */
import pg from "pg";
import { captureSlots } from "../../automation/lifecycle/pg/cdc/slot.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { TENANT_PASSWORD, type Scenario } from "./harness.ts";
import { connect, qi, type DbRef } from "./tenantDb.ts";

/** Whether the tenant's own credentials open a session on `db` ("ok"), or the server's refusal. */
export async function tenantLogin(db: DbRef, tenant: string): Promise<string> {
  try {
    const c = await connect(db, { user: pgTenantIdent(tenant), password: TENANT_PASSWORD });
    await c.end();
    return "ok";
  } catch (err) {
    return (err as Error).message;
  }
}

/** The change-capture slots on `db`. */
export async function slotsOn(db: DbRef): Promise<string[]> {
  const c = await connect(db);
  try {
    return (await captureSlots(c)).map((x) => x.slot);
  } finally {
    await c.end();
  }
}

/** The phase the tenant file records for the workflow under way (a move's or an upgrade's). */
export function phaseOf(s: Scenario): string | undefined {
  const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
  return t.deployment === "pooled" ? t.move?.phase : t.migration?.phase;
}

/** The secret name of the tenant's connection document. */
export function connectionDocName(s: Scenario): string {
  const name = [...s.secrets.versions.keys()].find((k) => k.endsWith(`/tenants/${s.tenant}/database`));
  if (!name) throw new Error(`scenario ${s.tenant} has no connection document`);
  return name;
}

/** The connection document the application reads now (AWSCURRENT). */
export function docOf(s: Scenario): { port: number; database: string } {
  return JSON.parse(s.secrets.currentText(connectionDocName(s))!) as { port: number; database: string };
}

export interface AppEvent {
  kind: "refused" | "accepted";
  /** performance.now() (orders it against the runner's calls). */
  at: number;
  /** The port of the server the document named. */
  port: number;
}

export interface Application {
  /** Every write, accepted or refused, in order. */
  readonly events: AppEvent[];
  /** Stops writing and closes its connection. */
  stop(): Promise<void>;
}

/**
 * The tenant's application: inserts a row (`payload`) into its `events` table every 5 ms through
 * the connection document, which it reads again on each (re)connect, until stopped.
 */
export function startApplication(s: Scenario, payload: string): Application {
  const docName = connectionDocName(s);
  const ident = pgTenantIdent(s.tenant);
  const events: AppEvent[] = [];
  let stop = false;
  const done = (async () => {
    let c: pg.Client | undefined;
    let port = 0;
    while (!stop) {
      try {
        if (!c) {
          const doc = JSON.parse(s.secrets.currentText(docName)!) as { host: string; port: number; database: string; user: string; password: string };
          port = doc.port;
          c = new pg.Client({ host: doc.host, port: doc.port, database: doc.database, user: doc.user, password: doc.password });
          c.on("error", () => undefined);
          await c.connect();
        }
        await c.query(`INSERT INTO ${qi(ident)}.events VALUES ($1, now(), NULL)`, [payload]);
        events.push({ kind: "accepted", at: performance.now(), port });
      } catch {
        events.push({ kind: "refused", at: performance.now(), port });
        await c?.end().catch(() => undefined);
        c = undefined;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await c?.end().catch(() => undefined);
  })();
  return {
    events,
    async stop() {
      stop = true;
      await done;
    },
  };
}
