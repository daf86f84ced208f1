/**
 * The raw COPY streams of the bulk copy (automation/lifecycle/pg/rawCopy.ts) on a live PostgreSQL:
 * what CopyOut hands on is exactly the server's CopyData messages (checked against
 * pg-copy-streams' `to`, which strips the framing), CopyIn loads them unchanged, and every failure
 * (the server refusing the COPY, a bad row, the pipeline failing midway) fails the stream and
 * leaves both sessions usable.
 */
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CopyIn, CopyOut } from "../../automation/lifecycle/pg/rawCopy.ts";
import { startPostgres, sqlState, type PgServer } from "../support/postgres.ts";

let server: PgServer;
let src: pg.Client;
let dst: pg.Client;

beforeAll(async () => {
  server = await startPostgres();
  src = await server.connect(server.bootstrap);
  dst = await server.connect(server.bootstrap);
  // Thousands of small rows (message headers fall across socket reads) and a few larger than a
  // socket read (one message spans several reads).
  await src.query(`CREATE TABLE raw_src (id int PRIMARY KEY, body text, at timestamptz)`);
  await src.query(`INSERT INTO raw_src SELECT g, repeat(chr(97 + g % 26), g % 300), timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, 20000) g`);
  await src.query(`INSERT INTO raw_src SELECT 20000 + g, repeat('big' || g, 70000), now() FROM generate_series(1, 3) g`);
});

afterAll(async () => {
  await src?.end();
  await dst?.end();
  await server?.stop();
});

async function chunks(s: AsyncIterable<unknown>): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return parts;
}

async function drain(s: AsyncIterable<unknown>): Promise<Buffer> {
  return Buffer.concat(await chunks(s));
}

/** The payloads of a run of CopyData messages, and how many there were (throws on anything else). */
function unframe(b: Buffer): { payload: Buffer; messages: number } {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    if (b[i] !== 0x64) throw new Error(`byte ${i}: message code ${b[i]}, not CopyData`);
    const len = b.readUInt32BE(i + 1);
    if (i + 1 + len > b.length) throw new Error(`byte ${i}: a message of ${len + 1} bytes cut at ${b.length - i}`);
    parts.push(b.subarray(i + 5, i + 1 + len));
    i += 1 + len;
  }
  return { payload: Buffer.concat(parts), messages: parts.length };
}

async function sameRows(): Promise<void> {
  const q = (t: string) => `SELECT count(*)::int AS n, md5(string_agg(r::text, '|' ORDER BY id)) AS h FROM ${t} r`;
  expect((await dst.query(q("raw_dst"))).rows[0]).toEqual((await src.query(q("raw_src"))).rows[0]);
}

describe("raw COPY streams", () => {
  for (const format of ["text", "binary"] as const) {
    it(`CopyOut hands on the server's CopyData messages as they are (${format}), and CopyIn loads them unchanged`, async () => {
      const opt = format === "binary" ? "(FORMAT binary)" : "";
      const out = src.query(new CopyOut(`COPY raw_src TO STDOUT ${opt}`));
      const parts = await chunks(out);
      expect(out.rowCount).toBe(20003);
      const stripped = await drain(src.query(copyTo(`COPY raw_src TO STDOUT ${opt}`)));
      // Every Buffer holds whole messages (unframe throws on a cut one), and together they are the data.
      const each = parts.map(unframe);
      expect(Buffer.concat(each.map((e) => e.payload)).equals(stripped)).toBe(true);
      // One message per row (binary: and the trailer), in more Buffers than rows larger than a socket read.
      expect(each.reduce((n, e) => n + e.messages, 0)).toBe(format === "binary" ? 20004 : 20003);
      expect(parts.length).toBeGreaterThan(10);

      await dst.query("DROP TABLE IF EXISTS raw_dst");
      await dst.query("CREATE TABLE raw_dst (id int, body text, at timestamptz)");
      const moving = src.query(new CopyOut(`COPY raw_src TO STDOUT ${opt}`));
      const sink = dst.query(new CopyIn(`COPY raw_dst FROM STDIN ${opt}`));
      await pipeline(moving, sink);
      expect([moving.rowCount, sink.rowCount]).toEqual([20003, 20003]);
      await sameRows();
    });
  }

  it("a COPY the server refuses fails the stream with the server's error, and the session serves the next query", async () => {
    const missing = await drain(src.query(new CopyOut("COPY no_such_table TO STDOUT"))).catch((e: unknown) => e);
    expect(sqlState(missing)).toBe("42P01");
    expect((await src.query("SELECT 1 AS x")).rows).toEqual([{ x: 1 }]);

    await dst.query("DROP TABLE IF EXISTS raw_dst");
    await dst.query("CREATE TABLE raw_dst (id int, body text, at timestamptz)");
    // A row the target cannot take, sent after good ones (as CopyData messages, as CopyIn expects).
    const frame = (s: string) => {
      const body = Buffer.from(s);
      const h = Buffer.alloc(5);
      h[0] = 0x64;
      h.writeUInt32BE(body.length + 4, 1);
      return Buffer.concat([h, body]);
    };
    const rows = [frame("1\ta\t2026-01-01\n"), frame("2\tb\t2026-01-01\n"), frame("three\tc\t2026-01-01\n")];
    const bad = await pipeline(async function* () {
      yield* rows;
    }, dst.query(new CopyIn("COPY raw_dst FROM STDIN"))).catch((e: unknown) => e);
    expect(sqlState(bad)).toBe("22P02");
    expect((await dst.query("SELECT count(*)::int AS n FROM raw_dst")).rows).toEqual([{ n: 0 }]);
    // Negative control: the same frames without the bad row load.
    await pipeline(async function* () {
      yield* rows.slice(0, 2);
    }, dst.query(new CopyIn("COPY raw_dst FROM STDIN")));
    expect((await dst.query("SELECT count(*)::int AS n FROM raw_dst")).rows).toEqual([{ n: 2 }]);
  });

  it("a pipeline failing midway ends both COPYs: the target loads nothing and both sessions serve the next query", async () => {
    await dst.query("DROP TABLE IF EXISTS raw_dst");
    await dst.query("CREATE TABLE raw_dst (id int, body text, at timestamptz)");
    let chunks = 0;
    const failing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        chunks += 1;
        done(chunks === 3 ? new Error("hashing failed") : null, chunk);
      },
    });
    const err = await pipeline(src.query(new CopyOut("COPY raw_src TO STDOUT")), failing, dst.query(new CopyIn("COPY raw_dst FROM STDIN"))).catch((e: unknown) => e);
    expect((err as Error).message).toBe("hashing failed");
    expect(chunks).toBe(3);
    // The source's COPY was read to its end and dropped, the target's failed (CopyFail): both sessions answer.
    expect((await src.query("SELECT 1 AS x")).rows).toEqual([{ x: 1 }]);
    expect((await dst.query("SELECT count(*)::int AS n FROM raw_dst")).rows).toEqual([{ n: 0 }]);
  });
});
