/** openEventStream (automation/http/eventStream.ts): the SSE opening every streaming route shares. */
import Fastify from "fastify";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEventStream, type EventStream } from "../../automation/http/eventStream.ts";
import { waitFor } from "./support/harness.ts";

const app = Fastify({ forceCloseConnections: true });
const closes: string[] = [];
let held: EventStream | undefined;
let base = "";
beforeAll(async () => {
  app.get("/ends", async (request, reply) => {
    const s = openEventStream(request, reply, () => void closes.push("ends"));
    s.write("event: a\ndata: 1\n\n");
    s.close();
    s.write("event: b\ndata: 2\n\n"); // after close: dropped
    s.close(); // idempotent
  });
  app.get("/held", async (request, reply) => {
    held = openEventStream(request, reply, () => void closes.push("held"));
    held.write("event: a\ndata: 1\n\n");
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app.close();
});

describe("openEventStream", () => {
  it("sends the SSE headers and what was written before close, then nothing; onClose runs once", async () => {
    const res = await fetch(`${base}/ends`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache, no-transform");
    expect(res.headers.get("x-accel-buffering")).toBe("no");
    expect(await res.text()).toBe("event: a\ndata: 1\n\n");
    await waitFor("the request's close", () => closes.includes("ends"));
    expect(closes.filter((c) => c === "ends")).toEqual(["ends"]);
  });

  it("a client that goes closes the stream: onClose runs once and later writes are dropped", async () => {
    const abort = new AbortController();
    const res = await fetch(`${base}/held`, { signal: abort.signal });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("event: a\ndata: 1\n\n");
    expect(held?.closed).toBe(false);
    abort.abort();
    await waitFor("the server to see the client go", () => held?.closed);
    held!.write("event: late\ndata: 3\n\n");
    held!.close();
    expect(closes.filter((c) => c === "held")).toEqual(["held"]);
  });
});
