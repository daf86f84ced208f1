/**
 * Applies decoded changes (pgoutput messages, as pg-logical-replication parses them, with every
 * value kept in PostgreSQL's text form) to the dedicated copy of a tenant schema, in commit order,
 * several source transactions to one target transaction (a batch, bounded by a number of source
 * transactions and by the bytes of values applied, and closed at the commit of any transaction
 * that carries a fence). Each target commit records the applied position with it (table
 * `saas_tenancy.cdc_progress`), and only a committed position is ever returned to be confirmed to
 * the slot. A crash inside a batch rolls the whole batch back: its source transactions were not
 * confirmed, so the slot sends them again; a crash between batches resumes after the last one
 * committed; a transaction the slot sends again is recognised by its commit position and
 * skipped, so nothing is applied twice.
 *
 * Positions: `applied_lsn` is the end of the last applied commit record (initially the slot's
 * consistent point, committed with the bulk copy); a transaction is applied iff its commit record
 * starts at or after it.
 */
import type pg from "pg";
import type { Pgoutput } from "pg-logical-replication";
import { MARKER_SCHEMA } from "../marker.ts";
import { qi, qn } from "../sql.ts";
import { lsnToBigInt } from "./slot.ts";

export const PROGRESS_TABLE = `${MARKER_SCHEMA}.cdc_progress`;

export interface Progress {
  slot: string;
  workflowId: string;
  env: string;
  appliedLsn: string;
  transactions: number;
}

/** Inside the caller's transaction (the bulk copy's): records the starting position of a stream. */
export async function startProgress(c: pg.ClientBase, p: Omit<Progress, "transactions">): Promise<void> {
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${MARKER_SCHEMA}`);
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${PROGRESS_TABLE} (
       slot text PRIMARY KEY, workflow_id uuid NOT NULL, env text NOT NULL, applied_lsn pg_lsn NOT NULL,
       transactions bigint NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())`,
  );
  await c.query(
    `INSERT INTO ${PROGRESS_TABLE} (slot, workflow_id, env, applied_lsn) VALUES ($1, $2, $3, $4)
     ON CONFLICT (slot) DO UPDATE SET applied_lsn = EXCLUDED.applied_lsn, transactions = 0, updated_at = now()`,
    [p.slot, p.workflowId, p.env, p.appliedLsn],
  );
}

export async function readProgress(c: pg.ClientBase, slot: string): Promise<Progress | undefined> {
  const { rows: t } = await c.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [PROGRESS_TABLE]);
  if (!t[0]?.t) return undefined;
  const { rows } = await c.query<{ slot: string; workflow_id: string; env: string; applied_lsn: string; transactions: string }>(
    `SELECT slot, workflow_id, env, applied_lsn::text, transactions::text FROM ${PROGRESS_TABLE} WHERE slot = $1`,
    [slot],
  );
  const r = rows[0];
  return r ? { slot: r.slot, workflowId: r.workflow_id, env: r.env, appliedLsn: r.applied_lsn, transactions: Number(r.transactions) } : undefined;
}

export async function deleteProgress(c: pg.ClientBase, slot: string): Promise<void> {
  const { rows: t } = await c.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [PROGRESS_TABLE]);
  if (t[0]?.t) await c.query(`DELETE FROM ${PROGRESS_TABLE} WHERE slot = $1`, [slot]);
}

/** The logical message prefix of the fences `emitFence` writes into the cell's WAL. */
export const FENCE_PREFIX = "saas-tenancy-cdc-fence";

/**
 * Writes a fence into the cell's WAL (a transactional logical message): once the applier has
 * committed the transaction holding it, every transaction the cell committed before is applied.
 * Returns the fence's LSN.
 */
export async function emitFence(cell: pg.ClientBase, token: string): Promise<string> {
  const { rows } = await cell.query<{ lsn: string }>("SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn", [FENCE_PREFIX, token]);
  return rows[0]!.lsn;
}

/** How many source transactions one target transaction holds at most. */
export const DEFAULT_BATCH_TRANSACTIONS = 500;
/** The value bytes one target transaction holds at most (it closes at the first commit past it). */
export const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;

export interface ApplierOptions {
  /** Track the key of every keyed row changed (the switch's bounded check). */
  trackKeys?: boolean;
  /** @default DEFAULT_BATCH_TRANSACTIONS (1: one target transaction per source transaction) */
  batchTransactions?: number;
  /** @default DEFAULT_BATCH_BYTES */
  batchBytes?: number;
}

/** A value as pgoutput sent it: text, NULL, or undefined for an unchanged TOASTed value it did not send. */
type Tuple = Record<string, string | null | undefined>;

export class ChangeApplier {
  private inTx = false;
  private skipping = false;
  /** The target transaction is open (a batch of source transactions applied, not yet committed). */
  private batchOpen = false;
  /** Source transactions and value bytes in the open batch, and the end of its last commit record. */
  private batchCount = 0;
  private batchBytes = 0;
  private batchEnd: string | undefined;
  private fenceInTx = false;
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private targetCommits = 0;
  private commitLsn: bigint = 0n;
  private applied: bigint;
  private count: number;
  private readonly seenFences = new Set<string>();
  private statements = 0;

  private readonly slot: string;

  /** With `trackKeys`: table -> key label -> key values of every keyed row changed (the switch's bounded check). */
  readonly touched = new Map<string, Map<string, (string | null)[]>>();
  private readonly trackKeys: boolean;

  constructor(private readonly target: pg.ClientBase, private readonly schema: string, progress: Progress, opts: ApplierOptions = {}) {
    this.trackKeys = opts.trackKeys === true;
    this.maxBatch = Math.max(1, Math.floor(opts.batchTransactions ?? DEFAULT_BATCH_TRANSACTIONS));
    this.maxBatchBytes = Math.max(1, opts.batchBytes ?? DEFAULT_BATCH_BYTES);
    this.applied = lsnToBigInt(progress.appliedLsn);
    this.count = progress.transactions;
    this.slot = progress.slot;
  }

  /** Target transactions committed by this applier (this process). */
  commits(): number {
    return this.targetCommits;
  }
  /** End of the last applied commit record (committed on the target). */
  appliedLsn(): bigint {
    return this.applied;
  }
  transactions(): number {
    return this.count;
  }
  /** Row changes applied by this applier (this process). */
  rowChanges(): number {
    return this.statements;
  }
  fenceSeen(token: string): boolean {
    return this.seenFences.has(token);
  }
  /** Whether a source transaction is half applied or a batch is open (its target transaction uncommitted). */
  busy(): boolean {
    return this.inTx || this.batchOpen;
  }

  private running = false;
  /** Whether a message is being applied right now. */
  handling(): boolean {
    return this.running;
  }

  /** Applies one message; returns the applied position when it committed a target transaction (a batch). */
  async handle(msg: Pgoutput.Message): Promise<string | undefined> {
    this.running = true;
    try {
      return await this.apply(msg);
    } finally {
      this.running = false;
    }
  }

  private async apply(msg: Pgoutput.Message): Promise<string | undefined> {
    switch (msg.tag) {
      case "begin": {
        if (this.inTx) throw new Error("pgoutput: BEGIN inside a transaction");
        this.commitLsn = lsnToBigInt(msg.commitLsn!);
        this.skipping = this.commitLsn < (this.batchEnd !== undefined ? lsnToBigInt(this.batchEnd) : this.applied);
        if (!this.skipping && !this.batchOpen) {
          await this.target.query("BEGIN");
          this.batchOpen = true;
        }
        this.inTx = true;
        this.fenceInTx = false;
        return undefined;
      }
      case "commit": {
        if (!this.inTx) throw new Error("pgoutput: COMMIT outside a transaction");
        const end = msg.commitEndLsn!;
        this.inTx = false;
        if (this.skipping) return this.batchOpen ? undefined : end;
        this.batchCount += 1;
        this.batchEnd = end;
        if (this.batchCount >= this.maxBatch || this.batchBytes >= this.maxBatchBytes || this.fenceInTx) return this.flush();
        return undefined;
      }
      case "message": {
        if (msg.prefix === FENCE_PREFIX) {
          this.seenFences.add(Buffer.from(msg.content).toString("utf8"));
          this.fenceInTx = true;
        }
        return undefined;
      }
      case "relation":
      case "type":
      case "origin":
        return undefined;
      case "insert":
        if (this.live()) await this.insert(msg.relation, msg.new as Tuple);
        return undefined;
      case "update":
        if (this.live()) await this.update(msg.relation, (msg.key ?? msg.old) as Tuple | null, msg.old !== null, msg.new as Tuple);
        return undefined;
      case "delete":
        if (this.live()) await this.delete(msg.relation, (msg.key ?? msg.old) as Tuple);
        return undefined;
      case "truncate":
        if (this.live() && msg.relations.length > 0) {
          await this.target.query(`TRUNCATE ${msg.relations.map((r) => this.table(r)).join(", ")}${msg.restartIdentity ? " RESTART IDENTITY" : ""}`);
          this.statements += 1;
        }
        return undefined;
    }
  }

  /**
   * Commits the open batch with its position (the end of its last source commit) and returns that
   * position, which only now may be confirmed to the slot.
   */
  private async flush(): Promise<string> {
    const end = this.batchEnd!;
    await this.target.query(
      `UPDATE ${PROGRESS_TABLE} SET applied_lsn = $2, transactions = transactions + $3, updated_at = now() WHERE slot = $1`,
      [this.slot, end, this.batchCount],
    );
    await this.target.query("COMMIT");
    this.applied = lsnToBigInt(end);
    this.count += this.batchCount;
    this.targetCommits += 1;
    this.batchOpen = false;
    this.batchCount = 0;
    this.batchBytes = 0;
    this.batchEnd = undefined;
    return end;
  }

  /**
   * Rolls back the open batch (the stream stopped inside it): its source transactions were never
   * confirmed, so the slot sends them again.
   */
  async abort(): Promise<void> {
    if (this.batchOpen) await this.target.query("ROLLBACK").catch(() => undefined);
    this.inTx = false;
    this.batchOpen = false;
    this.batchCount = 0;
    this.batchBytes = 0;
    this.batchEnd = undefined;
  }

  private live(): boolean {
    if (!this.inTx) throw new Error("pgoutput: a change outside a transaction");
    return !this.skipping;
  }

  private table(r: Pgoutput.MessageRelation): string {
    if (r.schema !== this.schema) throw new Error(`change capture of ${this.schema} received a change of ${r.schema}.${r.name}; the publication is wrong`);
    return qn(r.schema, r.name);
  }

  private touch(r: Pgoutput.MessageRelation, row: Tuple): void {
    if (!this.trackKeys || r.replicaIdentity === "full" || r.keyColumns.length === 0) return;
    const key = r.keyColumns.map((k) => row[k] ?? null);
    let m = this.touched.get(r.name);
    if (!m) this.touched.set(r.name, (m = new Map<string, (string | null)[]>()));
    m.set(JSON.stringify(key), key);
  }

  private async insert(r: Pgoutput.MessageRelation, row: Tuple): Promise<void> {
    this.touch(r, row);
    const cols = r.columns.map((c) => c.name).filter((n) => row[n] !== undefined);
    const sql = `INSERT INTO ${this.table(r)} (${cols.map(qi).join(", ")}) OVERRIDING SYSTEM VALUE VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`;
    await this.exec(sql, cols.map((c) => row[c]!), r, "insert", 1);
  }

  /**
   * `old`: the key (REPLICA IDENTITY DEFAULT, sent only when the key changed) or the whole old
   * row (FULL); absent: the key did not change and is read from the new row.
   */
  private async update(r: Pgoutput.MessageRelation, old: Tuple | null, full: boolean, row: Tuple): Promise<void> {
    const keyed = !full && r.keyColumns.length > 0;
    const where = old ?? Object.fromEntries(r.keyColumns.map((k) => [k, row[k]]));
    this.touch(r, where);
    this.touch(r, row);
    const set = r.columns
      .map((c) => c.name)
      .filter((n) => row[n] !== undefined)
      // Unchanged values are left alone (an identity column GENERATED ALWAYS may only be set to itself that way).
      .filter((n) => (keyed ? !(old === null && r.keyColumns.includes(n)) : !full || row[n] !== where[n]));
    if (set.length === 0) return;
    const params: (string | null)[] = set.map((n) => row[n]!);
    const assignments = set.map((n, i) => `${qi(n)} = $${i + 1}`).join(", ");
    const cond = this.match(r, where, keyed, params);
    await this.exec(`UPDATE ${this.table(r)} SET ${assignments} WHERE ${cond}`, params, r, "update", 1);
  }

  private async delete(r: Pgoutput.MessageRelation, old: Tuple): Promise<void> {
    const keyed = r.replicaIdentity !== "full" && r.keyColumns.length > 0;
    this.touch(r, old);
    const params: (string | null)[] = [];
    const cond = this.match(r, old, keyed, params);
    await this.exec(`DELETE FROM ${this.table(r)} WHERE ${cond}`, params, r, "delete", 1);
  }

  /**
   * The row a change names: by its key, or (FULL identity, no key) the first row whose every
   * column has the same text form (duplicates are interchangeable: one of them goes).
   */
  private match(r: Pgoutput.MessageRelation, old: Tuple, keyed: boolean, params: (string | null)[]): string {
    if (keyed) {
      return r.keyColumns.map((k) => {
        params.push(old[k] ?? null);
        return `${qi(k)} = $${params.length}`;
      }).join(" AND ");
    }
    const conds = r.columns
      .filter((c) => old[c.name] !== undefined)
      .map((c) => {
        params.push(old[c.name] ?? null);
        return `${qi(c.name)}::text IS NOT DISTINCT FROM $${params.length}::text`;
      });
    return `ctid = (SELECT ctid FROM ${this.table(r)} WHERE ${conds.join(" AND ")} LIMIT 1)`;
  }

  private async exec(sql: string, params: (string | null)[], r: Pgoutput.MessageRelation, what: string, expected: number): Promise<void> {
    const res = await this.target.query(sql, params);
    this.statements += 1;
    for (const p of params) this.batchBytes += p === null ? 0 : p.length;
    if ((res.rowCount ?? 0) !== expected) {
      throw new Error(
        `change capture: ${what} on ${r.schema}.${r.name} (source commit ${this.commitLsn.toString(16)}) matched ${res.rowCount ?? 0} rows on the dedicated copy, expected ${expected}; ` +
          "the copy has diverged from the cell: the upgrade must copy again (its copy step re-creates the slot)",
      );
    }
  }
}
