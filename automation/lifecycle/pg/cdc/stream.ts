/**
 * Streams a capture slot into a ChangeApplier with pg-logical-replication (pgoutput, protocol 1:
 * whole transactions at commit, in commit order) until a fence written into the cell's WAL has
 * been applied: "everything the cell committed before the fence is on the dedicated copy".
 *
 * Values are kept in PostgreSQL's text form (the library would parse them into JavaScript values,
 * losing timestamp precision and json formatting): the replication session uses the same
 * DateStyle, IntervalStyle, TimeZone, float digits and bytea format as the copy's sessions
 * (prepareSession), so a value is written back exactly as it was read. The slot's confirmed
 * position moves only after the dedicated side committed, so the cell keeps the WAL of anything
 * not yet applied.
 */
import type pg from "pg";
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from "pg-logical-replication";
import { bigIntToLsn } from "./slot.ts";
import type { ChangeApplier } from "./apply.ts";

/** Session settings of the replication connection (server-side output functions run with them). */
const REPLICATION_OPTIONS = "-c DateStyle=ISO,YMD -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=1 -c bytea_output=hex";

/** pgoutput with values left as text. */
class TextPgoutput extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const msg = super.parse(buffer);
    // The parser caches this relation object and reads tuples through its columns' parsers.
    if (msg.tag === "relation") for (const c of msg.columns) c.parser = (raw: unknown) => raw;
    return msg;
  }
}

export interface StreamResult {
  appliedLsn: string;
  /** Transactions applied by this call. */
  transactions: number;
  rowChanges: number;
  ms: number;
}

export class StreamTimeoutError extends Error {}

/**
 * Applies the slot's changes until `applier` has committed the transaction holding fence `token`.
 * Rejects on the first failure (the half-applied transaction rolled back), or with
 * StreamTimeoutError after `timeoutMs`, or when `signal` aborts; the stream is stopped in every case.
 */
export async function streamUntilFence(opts: {
  replication: pg.ClientConfig;
  slot: string;
  applier: ChangeApplier;
  token: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called after each applied transaction (lag reporting). */
  onCommit?: (appliedLsn: string) => void;
}): Promise<StreamResult> {
  const { applier, token } = opts;
  const started = Date.now();
  const tx0 = applier.transactions();
  const rows0 = applier.rowChanges();
  const service = new LogicalReplicationService(
    { ...opts.replication, options: REPLICATION_OPTIONS },
    { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
  );
  const plugin = new TextPgoutput({ protoVersion: 1, publicationNames: [opts.slot], messages: true });
  let settle!: (err?: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  let over = false;
  const finish = (err?: Error) => {
    if (over) return;
    over = true;
    settle(err);
  };
  service.on("data", async (_lsn: string, msg: Pgoutput.Message) => {
    if (over) return;
    try {
      const committed = await applier.handle(msg);
      if (committed !== undefined) {
        await service.acknowledge(committed);
        opts.onCommit?.(committed);
        if (applier.fenceSeen(token)) finish();
      }
    } catch (err) {
      finish(err instanceof Error ? err : new Error(String(err)));
    }
  });
  service.on("heartbeat", async (_lsn: string, _ts: number, shouldRespond: boolean) => {
    if (shouldRespond && !over) await service.acknowledge(bigIntToLsn(applier.appliedLsn()));
  });
  service.on("error", (err: Error) => finish(err));
  const timer = setTimeout(() => finish(new StreamTimeoutError(`change capture from slot ${opts.slot} did not reach its fence within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  const onAbort = () => finish(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error("the step was abandoned"));
  opts.signal?.addEventListener("abort", onAbort);
  service.subscribe(plugin, opts.slot).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
  try {
    await finished;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    await service.destroy().catch(() => undefined);
    // A message still being applied when the stream stopped: wait for the applier to leave it,
    // then roll back what it left open (the transaction comes again on the next stream).
    for (let i = 0; i < 200 && applier.handling(); i++) await new Promise((r) => setTimeout(r, 10));
    await applier.abort();
  }
  return {
    appliedLsn: bigIntToLsn(applier.appliedLsn()),
    transactions: applier.transactions() - tx0,
    rowChanges: applier.rowChanges() - rows0,
    ms: Date.now() - started,
  };
}
