/**
 * GET /api/runs/events (automation/http/runChanges.ts): the run queue's state changes as
 * server-sent events, against a control plane on a live PostgreSQL with the Pulumi CLI test
 * double. A run held by the test is seen running, a second run of its stack queued behind it,
 * then both finishing; ?stack= keeps one stack's; many streams at once leave no warning, and each
 * gives its hub listener and its stream slot back when its client goes.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_HTTP_SETTINGS } from "../../automation/http/settings.ts";
import { API_KEY, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const HELD = "shared-prod-euw1-01";
const OTHER = "dedicated-acme-prod";
/** Streams one key may hold here: more than an EventEmitter's default limit of 10 listeners. */
const PER_KEY = 15;
let pg: TestPostgres;
let h: Harness;
let tmp: string;
let gate: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tenancy-run-changes-"));
  gate = join(tmp, "release");
  pg = await startTestPostgres();
  h = await startHarness({
    pg,
    // Each up of HELD waits for the gate, then takes 400 ms before its first event: long enough to be seen running.
    fake: { holdUntil: { [HELD]: gate }, durationMs: { [HELD]: 400 } },
    config: { http: { ...DEFAULT_HTTP_SETTINGS, metrics: { host: "127.0.0.1", port: 0 }, ssePerKey: PER_KEY } },
    start: { runs: true },
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Seen {
  event: string;
  run?: { id: string; stack: string; state: string };
}

/** An open stream: the events parsed so far, and its end. */
async function open(query = "", key = API_KEY) {
  const ctl = new AbortController();
  const res = await fetch(`${h.baseUrl}/api/runs/events${query}`, { headers: { "x-api-key": key, accept: "text/event-stream" }, signal: ctl.signal });
  const seen: Seen[] = [];
  if (res.status !== 200) {
    const body = await res.text();
    return { status: res.status, body, seen, close: async () => ctl.abort() };
  }
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const done = (async () => {
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event) seen.push({ event, ...(data ? (JSON.parse(data) as { run?: Seen["run"] }) : {}) });
        }
      }
    } catch {
      // Aborted by the test.
    }
  })();
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    body: "",
    seen,
    close: async () => {
      ctl.abort();
      await done;
    },
  };
}

/** The states a stream reported for one run, in order, repeats dropped. */
const statesOf = (seen: Seen[], id: string) => seen.filter((s) => s.run?.id === id).map((s) => s.run!.state).filter((s, i, all) => i === 0 || all[i - 1] !== s);

const enqueue = async (stack: string) => {
  const r = await h.api("POST", `/api/stacks/${stack}/runs`);
  expect(r.status).toBe(202);
  return (r.json.run as { id: string }).id;
};

describe("GET /api/runs/events", () => {
  it("sends each run's state changes as they happen: a held run running, a second run queued behind it, both finishing; ?stack= only that stack's", async () => {
    const all = await open();
    const one = await open(`?stack=${HELD}`);
    expect([all.status, all.type]).toEqual([200, "text/event-stream; charset=utf-8"]);
    try {
      const first = await enqueue(HELD);
      await waitFor("the held run to be reported running", () => statesOf(all.seen, first).includes("running"), 30_000);
      const second = await enqueue(HELD);
      await waitFor("the second run to be reported queued", () => statesOf(all.seen, second).includes("queued"), 30_000);
      const other = await enqueue(OTHER);
      await waitFor("the other stack's run to finish", () => statesOf(all.seen, other).at(-1) === "succeeded", 30_000);
      // Nothing of HELD finished while the gate was shut.
      expect(statesOf(all.seen, second)).toEqual(["queued"]);
      writeFileSync(gate, "");
      await waitFor("the second run to finish", () => statesOf(all.seen, second).at(-1) === "succeeded", 60_000);
      // The first may have started before its queued state was read back: then its first event says running.
      expect(["queued running succeeded", "running succeeded"]).toContain(statesOf(all.seen, first).join(" "));
      // Queued behind the first, started once it finished (held 400 ms before its first event), then finished.
      expect(statesOf(all.seen, second)).toEqual(["queued", "running", "succeeded"]);
      // The stack's own stream: the same changes of HELD's runs, none of the other stack's.
      await waitFor("the stack's stream to see the second run finish", () => statesOf(one.seen, second).at(-1) === "succeeded", 10_000);
      expect(statesOf(one.seen, second)).toEqual(statesOf(all.seen, second));
      expect(one.seen.filter((s) => s.run?.stack !== HELD)).toEqual([]);
      expect(statesOf(one.seen, other)).toEqual([]);
      // Each event carries the run as GET /api/runs/:id answers it.
      const shown = (await h.api("GET", `/api/runs/${second}`)).json.run as Record<string, unknown>;
      expect(all.seen.filter((s) => s.run?.id === second).at(-1)!.run).toEqual(shown);
    } finally {
      await all.close();
      await one.close();
    }
  });

  it("refuses a ?stack= that is not a stack name, naming it", async () => {
    const bad = await open("?stack=not_a_stack");
    expect(bad.status).toBe(400);
    expect((JSON.parse(bad.body) as { error: { message: string } }).error.message).toContain("not_a_stack");
  });

  it("holds more streams than an EventEmitter's default limit without a warning, and each gives its listener and its slot back when its client goes", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    const before = h.cp.hub.listenerCount;
    try {
      const streams = await Promise.all(Array.from({ length: PER_KEY }, () => open()));
      expect(streams.map((s) => s.status)).toEqual(Array(PER_KEY).fill(200));
      expect(h.cp.hub.listenerCount).toBe(before + PER_KEY);
      // The key's cap holds: one more is refused.
      const over = await open();
      expect(over.status).toBe(429);
      // A change reaches every stream.
      const id = await enqueue(OTHER);
      await waitFor("every stream to see the run finish", () => streams.every((s) => statesOf(s.seen, id).at(-1) === "succeeded"), 30_000);
      await Promise.all(streams.map((s) => s.close()));
      await waitFor("the streams' listeners to be removed", () => h.cp.hub.listenerCount === before, 10_000);
      // Their slots are free again: as many streams open as before.
      const again = await Promise.all(Array.from({ length: PER_KEY }, () => open()));
      expect(again.map((s) => s.status)).toEqual(Array(PER_KEY).fill(200));
      await Promise.all(again.map((s) => s.close()));
      await waitFor("the second streams' listeners to be removed", () => h.cp.hub.listenerCount === before, 10_000);
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
  });
});
