/**
 * A tenant's database as the stacks leave it (role and schema `tenant_<id>`, CONNECT granted,
 * PUBLIC stripped of everything) and as its application fills it (several tables, an enum, a
 * free-standing sequence, serial and identity columns, a generated column, foreign keys, unique and
 * check constraints, expression indexes, a table without any key), plus a writer that keeps
 * changing it the way an application does.
 *
 * `provisionTenantInDb` stands in for what the postgresql resources of a cell or dedicated stack
 * create (TenantDatabaseAccess + DatabaseHardening): it is executed here as SQL by the master-like
 * admin, not by Pulumi.
 */
import pg from "pg";
import type { Credentials, PgServer } from "../support/postgres.ts";

export function qi(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export interface DbRef {
  server: PgServer;
  admin: Credentials;
  database: string;
}

export async function connect(ref: DbRef, who: Credentials = ref.admin): Promise<pg.Client> {
  return ref.server.connect({ ...who, database: ref.database });
}

/** Runs `fn` on a fresh admin session of `ref`, ended after. */
export async function withDb<T>(ref: DbRef, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(ref);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export function clientConfig(ref: DbRef): pg.ClientConfig {
  return { host: ref.server.host, port: ref.server.port, user: ref.admin.user, password: ref.admin.password, database: ref.database };
}

/** Role + schema + CONNECT, LOGIN as told; PUBLIC loses CONNECT and CREATE on public (the hardening). */
export async function provisionTenantInDb(ref: DbRef, ident: string, password: string, login: boolean): Promise<void> {
  await provisionTenantsInDb(ref, [ident], password, login);
}

/** provisionTenantInDb for many tenants on one admin session (a cell with hundreds of schemas). */
export async function provisionTenantsInDb(ref: DbRef, idents: readonly string[], password: string, login: boolean): Promise<void> {
  const c = await connect(ref);
  try {
    for (const ident of idents) await provisionOn(c, ref, ident, password, login);
    await c.query(`REVOKE ALL ON DATABASE ${qi(ref.database)} FROM PUBLIC`);
    await c.query("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
  } finally {
    await c.end();
  }
}

async function provisionOn(c: pg.Client, ref: DbRef, ident: string, password: string, login: boolean): Promise<void> {
  const exists = (await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [ident])).rowCount === 1;
  if (!exists) {
    await c.query(`CREATE ROLE ${qi(ident)} WITH ${login ? "LOGIN" : "NOLOGIN"} PASSWORD '${password}' CONNECTION LIMIT 20 NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION`);
    ref.server.trackRoles([ident]);
    await c.query(`ALTER ROLE ${qi(ident)} SET search_path TO ${qi(ident)}`);
  } else {
    await c.query(`ALTER ROLE ${qi(ident)} WITH ${login ? "LOGIN" : "NOLOGIN"}`);
  }
  // The provider grants the admin the owner role around CREATE SCHEMA when it is not a member
  // already, and revokes what it granted (withRolesGranted).
  const member = (await c.query<{ m: boolean }>("SELECT pg_has_role(current_user, $1, 'SET') AS m", [ident])).rows[0]?.m === true;
  if (!member) await c.query(`GRANT ${qi(ident)} TO CURRENT_USER WITH INHERIT FALSE, SET TRUE`);
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${qi(ident)} AUTHORIZATION ${qi(ident)}`);
  if (!member) await c.query(`REVOKE ${qi(ident)} FROM CURRENT_USER`);
  await c.query(`GRANT CONNECT ON DATABASE ${qi(ref.database)} TO ${qi(ident)}`);
}

/** The application's tables, created as the tenant's role (as the application's migrations would). */
export function applicationDdl(s: string): string[] {
  const q = qi(s);
  return [
    `CREATE TYPE ${q}.mood AS ENUM ('happy', 'sad', 'ok')`,
    `CREATE SEQUENCE ${q}.invoice_no START 1000`,
    `CREATE TABLE ${q}.customers (
       id bigserial PRIMARY KEY,
       email text NOT NULL UNIQUE,
       name text,
       mood ${q}.mood DEFAULT 'ok',
       created_at timestamptz NOT NULL DEFAULT now(),
       profile jsonb,
       balance numeric(12, 2) CHECK (balance >= 0))`,
    `CREATE TABLE ${q}.orders (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       customer_id bigint NOT NULL REFERENCES ${q}.customers (id) ON DELETE CASCADE,
       invoice integer NOT NULL DEFAULT nextval('${s}.invoice_no'),
       amount double precision,
       note text,
       total_cents bigint GENERATED ALWAYS AS ((amount * 100)::bigint) STORED,
       placed_on date)`,
    `CREATE INDEX orders_customer_idx ON ${q}.orders (customer_id)`,
    `CREATE INDEX customers_lower_email ON ${q}.customers (lower(email))`,
    `CREATE TABLE ${q}.order_tags (
       order_id bigint REFERENCES ${q}.orders (id) ON DELETE CASCADE,
       tag text,
       PRIMARY KEY (order_id, tag))`,
    `CREATE TABLE ${q}.events (payload text, at timestamptz, data bytea)`,
  ];
}

export async function createApplicationSchema(ref: DbRef, ident: string, password: string, customers: number): Promise<void> {
  const c = await connect(ref, { user: ident, password });
  try {
    for (const sql of applicationDdl(ident)) await c.query(sql);
    const q = qi(ident);
    await c.query(
      `INSERT INTO ${q}.customers (email, name, mood, profile, balance, created_at)
       SELECT 'c' || g || '@example.com', 'Customer ' || g || E' \\t tab; "quoted" \\\\ back', (ARRAY['happy','sad','ok'])[1 + g % 3]::${q}.mood,
              jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g)), (g * 1.25)::numeric(12,2),
              timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
         FROM generate_series(1, $1) g`,
      [customers],
    );
    await c.query(
      `INSERT INTO ${q}.orders (customer_id, amount, note, placed_on)
       SELECT 1 + (g % $1), g / 3.0, CASE WHEN g % 7 = 0 THEN NULL ELSE 'order ' || g || E'\\nsecond line' END, date '2024-01-01' + g % 400
         FROM generate_series(1, $1 * 3) g`,
      [customers],
    );
    await c.query(`INSERT INTO ${q}.order_tags SELECT id, t FROM ${q}.orders, unnest(ARRAY['x','y']) t WHERE id % 2 = 0`);
    await c.query(
      `INSERT INTO ${q}.events SELECT 'event ' || g, timestamptz '2024-02-01 00:00:00+00' + g * interval '1 second', decode(md5(g::text), 'hex') FROM generate_series(1, $1) g`,
      [customers],
    );
  } finally {
    await c.end();
  }
}

export interface WriterStats {
  /** Customer emails whose insert committed. */
  inserted: string[];
  /** Customer ids whose delete committed. */
  deleted: number[];
  /** Customer ids whose balance update committed, with the value written. */
  updated: Map<number, string>;
  /** Events appended (committed). */
  events: number;
  /** Transactions committed. */
  commits: number;
  /** The error that stopped the writer (expected: it was cut off at cutover). */
  stoppedBy?: string;
}

/**
 * The tenant's application: one transaction after another (insert a customer with an order and a
 * tag, update another's balance, delete a third, append an event) as the tenant's role, until its
 * connection is terminated and it can no longer log in, or `stop()` is called. Records only what
 * committed, so a test can require every committed change to reach the copy.
 */
export function startWriter(ref: DbRef, ident: string, password: string, seed: number): { stats: WriterStats; stop(): Promise<void>; done: Promise<void>; waitForCommits(n: number): Promise<void> } {
  const stats: WriterStats = { inserted: [], deleted: [], updated: new Map(), events: 0, commits: 0 };
  let stopping = false;
  const q = qi(ident);
  const waiters: { n: number; resolve: () => void }[] = [];
  const done = (async () => {
    let i = 0;
    let client: pg.Client | undefined;
    try {
      client = await connect(ref, { user: ident, password });
      while (!stopping) {
        i++;
        const email = `w${seed}-${i}@example.com`;
        const victim = 2 + ((i * 7919) % 50);
        const upd = 60 + ((i * 104729) % 50);
        const value = `${(i % 997) + 0.5}`;
        await client.query("BEGIN");
        const ins = await client.query<{ id: string }>(`INSERT INTO ${q}.customers (email, name, mood) VALUES ($1, 'writer', 'happy') RETURNING id`, [email]);
        const ord = await client.query<{ id: string }>(`INSERT INTO ${q}.orders (customer_id, amount, note) VALUES ($1, $2, 'w') RETURNING id`, [ins.rows[0]!.id, i]);
        await client.query(`INSERT INTO ${q}.order_tags VALUES ($1, 'w')`, [ord.rows[0]!.id]);
        await client.query(`UPDATE ${q}.customers SET balance = $2 WHERE id = $1`, [upd, value]);
        const del = await client.query(`DELETE FROM ${q}.customers WHERE id = $1`, [victim]);
        await client.query(`INSERT INTO ${q}.events VALUES ('writer', now(), NULL)`);
        await client.query("COMMIT");
        stats.inserted.push(email);
        stats.updated.set(upd, value);
        if ((del.rowCount ?? 0) > 0) stats.deleted.push(victim);
        stats.events++;
        stats.commits++;
        for (const w of waiters.splice(0)) if (stats.commits >= w.n) w.resolve(); else waiters.push(w);
        await new Promise((r) => setTimeout(r, 2));
      }
    } catch (err) {
      stats.stoppedBy = (err as Error).message;
    } finally {
      await client?.end().catch(() => undefined);
      for (const w of waiters.splice(0)) w.resolve();
    }
  })();
  return {
    stats,
    done,
    async stop() {
      stopping = true;
      await done;
    },
    waitForCommits(n: number) {
      if (stats.commits >= n || stats.stoppedBy !== undefined) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
  };
}
