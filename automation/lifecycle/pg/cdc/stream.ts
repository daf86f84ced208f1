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

/**
 * Tells the server every change before `applied` is on the copy: the slot's confirmed position
 * becomes exactly `applied` (the end of the last applied commit record), where the next stream
 * starts decoding. pg-logical-replication's `acknowledge(lsn)` reports `lsn + 1` ("Last WAL Byte
 * + 1", node_modules/pg-logical-replication/dist/logical-replication-service.js), and PostgreSQL
 * skips every transaction whose commit record starts before the confirmed position
 * (SnapBuildXactNeedsSkip in src/backend/replication/logical/snapbuild.c: `ptr <
 * start_decoding_at`). A commit record that starts right where the last applied one ended (the
 * next WAL record: an application commit just after a fence) would be skipped for good by the
 * next stream: a committed write lost. So one byte less is passed.
 */
export async function confirmApplied(service: LogicalReplicationService, applied: bigint, ping = false): Promise<boolean> {
  if (applied === 0n) return false;
  return service.acknowledge(bigIntToLsn(applied - 1n), ping);
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
  /** Called on the next keepalive (the reply to the last confirmation's request). */
  let lastHeartbeat: (() => void) | undefined;
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
        await confirmApplied(service, applier.appliedLsn());
        opts.onCommit?.(committed);
        if (applier.fenceSeen(token)) finish();
      }
    } catch (err) {
      finish(err instanceof Error ? err : new Error(String(err)));
    }
  });
  service.on("heartbeat", async (_lsn: string, _ts: number, shouldRespond: boolean) => {
    if (shouldRespond && !over) await confirmApplied(service, applier.appliedLsn());
    lastHeartbeat?.();
  });
  service.on("error", (err: Error) => finish(err));
  const timer = setTimeout(() => finish(new StreamTimeoutError(`change capture from slot ${opts.slot} did not reach its fence within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  const onAbort = () => finish(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error("the step was abandoned"));
  opts.signal?.addEventListener("abort", onAbort);
  service.subscribe(plugin, opts.slot).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
  let failed = false;
  try {
    await finished.catch((err: unknown) => {
      failed = true;
      throw err;
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    if (!failed) {
      // The last confirmation travels with a request for a reply: once the server replied it has
      // read it (it reads in order). Closing the connection at once could reset it with the
      // confirmation unread; nothing would be lost (the applier skips what it applied), but the
      // slot would keep WAL and send the last transactions again.
      const replied = new Promise<void>((resolve) => (lastHeartbeat = resolve));
      if (await confirmApplied(service, applier.appliedLsn(), true).catch(() => false)) {
        let wait: NodeJS.Timeout | undefined;
        await Promise.race([replied, new Promise((r) => (wait = setTimeout(r, 2_000)))]);
        clearTimeout(wait);
      }
    }
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
