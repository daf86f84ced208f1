/**
 * COPY streams for node-postgres that hand on the server's CopyData messages as they are, framing
 * included, for the bulk copy (bulkCopy.ts, docs/lifecycle.md "The bulk copy"):
 *
 * - `CopyOut` (`COPY ... TO STDOUT`): a readable stream of the CopyData messages the server sends,
 *   each Buffer a run of whole messages sliced from one socket read (no copy but for a message cut
 *   by the end of a read), the other messages (CopyOutResponse, notices, CopyDone) left out;
 * - `CopyIn` (`COPY ... FROM STDIN`): a writable stream that sends what it is given to the server
 *   unchanged, so each Buffer it is given must hold whole CopyData messages (a CopyOut's do): when
 *   the pipeline fails, its CopyFail must not land inside a message.
 *
 * A CopyData message has the same form in both directions, so a table travels from one server to
 * the other without being reframed or copied in this process: PostgreSQL sends one message per
 * row, and pg-copy-streams strips the framing on the way out (allocations and a copy per row) and
 * adds it back on the way in. Both streams take the
 * connection over for the COPY as pg-copy-streams' `to` and `from` do (its copy-to.js and
 * copy-from.js, MIT: the same attach and detach around pg's parser, CopyFail when a pipeline
 * fails). Unlike pg-copy-streams 7, a destroyed CopyOut reads the rest of its COPY and drops it, so
 * the connection serves the next query (a ROLLBACK after a failed pipeline) instead of hanging.
 */
import { Readable, Writable } from "node:stream";
import type { Connection, Submittable } from "pg";

const COPY_DATA = 0x64;
const COPY_OUT_RESPONSE = 0x48;
const ERROR_RESPONSE = 0x45;
const NOTICE_RESPONSE = 0x4e;
const PARAMETER_STATUS = 0x53;
const NOTIFICATION_RESPONSE = 0x41;
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);

/** Messages the server may send inside copy-out mode without ending it (protocol-flow.html#PROTOCOL-COPY). */
function continuesCopyOut(code: number): boolean {
  return code === COPY_DATA || code === COPY_OUT_RESPONSE || code === NOTICE_RESPONSE || code === PARAMETER_STATUS || code === NOTIFICATION_RESPONSE;
}

function rowCountOf(msg: { text?: string } | undefined): number | undefined {
  const m = /COPY (\d+)/.exec(msg?.text ?? "");
  return m ? Number(m[1]) : undefined;
}

type DataHandler = (chunk: Buffer) => void;
/** pg's Connection has sendCopyFail (lib/connection.js); @types/pg does not declare it. */
type CopyConnection = Connection & { sendCopyFail(message: string): void };

export class CopyOut extends Readable implements Submittable {
  /** Rows the server sent (its CommandComplete), set before the stream ends. */
  rowCount = 0;
  private connection: Connection | undefined;
  private pgDataHandler: DataHandler | undefined;
  private readonly onReadable = (): void => this.forward();
  /** The code of the message being read, and how many bytes of its header (5) and body are still to come. */
  private code = 0;
  private header = Buffer.alloc(5);
  private headerFill = 0;
  private remaining = 0;
  /** The start of a CopyData message cut by the end of the previous read(s). */
  private carry: Buffer[] = [];
  private drained = false;
  private forwarding = false;
  private discarding = false;
  private detached = false;
  private failed = false;

  constructor(readonly text: string) {
    super();
  }

  submit(connection: Connection): void {
    this.connection = connection;
    // Destroyed while queued behind other queries: read the COPY and drop it.
    if (this.destroyed) this.discarding = this.drained = true;
    const socket = connection.stream;
    const listeners = socket.listeners("data") as DataHandler[];
    if (listeners.length !== 1) throw new Error(`COPY TO STDOUT expects one data listener on the connection's socket, found ${listeners.length}`);
    this.pgDataHandler = listeners[0]!;
    socket.removeListener("data", this.pgDataHandler);
    socket.pause();
    socket.on("readable", this.onReadable);
    connection.query(this.text);
    this.forward();
  }

  override _read(): void {
    this.drained = true;
    this.forward();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.detached && this.connection) {
      this.discarding = true;
      this.drained = true;
      this.forward();
    }
    cb(err);
  }

  private forward(): void {
    if (this.forwarding || !this.drained || !this.connection || this.detached) return;
    this.forwarding = true;
    const socket = this.connection.stream;
    let chunk: Buffer | null;
    // A destroy from inside a push (the pipeline failing on this data) turns discarding on: read on.
    while (this.drained && !this.detached && (chunk = socket.read() as Buffer | null) !== null) this.drained = this.parse(chunk) || this.discarding;
    this.forwarding = false;
  }

  /**
   * Consumes one socket read; returns whether more may be pushed. Each Buffer pushed holds whole
   * CopyData messages (a message cut by the end of a read is carried to the next one), so a
   * CopyIn fed from here can end its COPY between any two of them.
   */
  private parse(chunk: Buffer): boolean {
    let more = true;
    // Where the CopyData bytes of this read not pushed yet begin (0 when a carried message goes
    // on), and where the last CopyData message completed in this read ends.
    let from = this.carry.length > 0 ? 0 : -1;
    let whole = -1;
    const emit = (): void => {
      if (from < 0 || whole <= from) return;
      const piece = chunk.subarray(from, whole);
      const b = this.carry.length > 0 ? Buffer.concat([...this.carry, piece]) : piece;
      this.carry = [];
      from = whole;
      if (!this.discarding) more = this.push(b) && more;
    };
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining > 0) break;
      } else if (this.headerFill === 0) {
        this.code = chunk[i]!;
        if (this.code === COPY_DATA) {
          if (from < 0) from = i;
        } else {
          emit();
          from = -1;
          if (this.code === ERROR_RESPONSE) {
            // pg parses the error and fails the query (handleError).
            this.detach(chunk.subarray(i));
            return false;
          }
        }
        if (chunk.length - i < 5) {
          chunk.copy(this.header, 0, i);
          this.headerFill = chunk.length - i;
          break;
        }
        this.remaining = chunk.readUInt32BE(i + 1) - 4;
        i += 5;
      } else {
        const n = Math.min(5 - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + n);
        this.headerFill += n;
        i += n;
        if (this.headerFill < 5) break;
        this.headerFill = 0;
        this.remaining = this.header.readUInt32BE(1) - 4;
      }
      if (this.remaining > 0) continue;
      if (this.code === COPY_DATA) whole = i;
      else if (!continuesCopyOut(this.code)) {
        // CopyDone: what is left of the read goes to pg's parser.
        this.detach(chunk.subarray(i));
        return more;
      }
    }
    emit();
    if (from >= 0 && from < chunk.length && !this.discarding) this.carry.push(chunk.subarray(from));
    return more;
  }

  private detach(rest: Buffer): void {
    this.detached = true;
    const socket = this.connection!.stream;
    socket.removeListener("readable", this.onReadable);
    socket.addListener("data", this.pgDataHandler!);
    if (rest.length > 0) this.pgDataHandler!(rest);
    // As pg-copy-streams: resume once pg's handler has returned (it may pause the socket itself).
    process.nextTick(() => socket.resume());
  }

  handleError(err: Error): void {
    this.failed = true;
    if (!this.discarding) this.destroy(err);
  }

  handleCommandComplete(msg: { text?: string } | undefined): void {
    this.rowCount = rowCountOf(msg) ?? this.rowCount;
  }

  /** The stream ends with the query, so rowCount is known by then. */
  handleReadyForQuery(): void {
    if (!this.failed && !this.discarding) this.push(null);
  }
}

export class CopyIn extends Writable implements Submittable {
  /** Rows the server loaded (its CommandComplete), set when the stream finishes. */
  rowCount = 0;
  private connection: Connection | undefined;
  private copying = false;
  /** What waits for the server's CopyInResponse: a write, the end, or a CopyFail. */
  private waiting: (() => void) | undefined;
  private finalCb: ((err?: Error | null) => void) | undefined;
  private destroyCb: ((err?: Error | null) => void) | undefined;
  private serverError: Error | undefined;
  private ended = false;

  constructor(readonly text: string) {
    super();
  }

  submit(connection: Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  handleCopyInResponse(): void {
    this.copying = true;
    if (this.destroyed && !this.destroyCb && !this.serverError) {
      // Destroyed while queued behind other queries: end the COPY at once, loading nothing.
      (this.connection as CopyConnection).sendCopyFail("the copy's source stream failed");
      return;
    }
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.whenCopying(() => this.send([chunk], cb));
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.whenCopying(() => this.send(chunks.map((c) => c.chunk), cb));
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finalCb = cb;
    this.whenCopying(() => void this.connection!.stream.write(COPY_DONE));
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.serverError || !this.connection || this.finalCb || this.ended) {
      cb(err);
      return;
    }
    // The pipeline failed on our side: the server drops the COPY (and the rows sent) on CopyFail
    // and answers with an error, after which the connection serves the next query.
    this.destroyCb = () => cb(err);
    this.whenCopying(() => (this.connection as CopyConnection).sendCopyFail(err?.message ?? "the copy's source stream failed"));
  }

  private whenCopying(f: () => void): void {
    if (this.copying) f();
    else this.waiting = f;
  }

  private send(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const socket = this.connection!.stream;
    let ok = true;
    for (const c of chunks) ok = socket.write(c);
    if (ok) cb();
    else socket.once("drain", () => cb());
  }

  handleError(err: Error): void {
    this.serverError = err;
    const d = this.destroyCb;
    this.destroyCb = undefined;
    if (d) d();
    else this.destroy(err);
  }

  handleCommandComplete(msg: { text?: string } | undefined): void {
    this.rowCount = rowCountOf(msg) ?? this.rowCount;
  }

  /** The stream finishes when the server has committed the COPY to the transaction (ReadyForQuery). */
  handleReadyForQuery(): void {
    this.ended = true;
    const f = this.finalCb;
    this.finalCb = undefined;
    if (f && !this.serverError) f();
  }
}
