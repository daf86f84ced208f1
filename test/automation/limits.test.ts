/**
 * Connection limits of the HTTP server on a running control plane: a request whose body trickles
 * in is cut off with 408, connections beyond the cap are closed at once, and run event streams
 * flush their headers at once and are capped per key and in all; inputs checked where they
 * enter (Stripe tenant ids, signature timestamps from the future, JSON nested too deeply).
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeyRecord, newApiKey } from "../../automation/http/apiKeys.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../automation/http/settings.ts";
import { count, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { sign, subscriptionEvent } from "./support/stripe.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { createHash } from "node:crypto";
import { API_KEY } from "./support/harness.ts";

const MAX_CONNECTIONS = 8;
const a = newApiKey("reader-a", ["read"]);
const b = newApiKey("reader-b", ["read"]);
const record = (k: { key: string; id: string }, name: string) => apiKeyRecord({ name, id: k.id, hash: `sha256:${createHash("sha256").update(k.key).digest("hex")}`, scopes: ["read"] });

let pg: TestPostgres;
let h: Harness;
beforeAll(async () => {
  pg = await startTestPostgres();
  h = await startHarness({
    pg,
    // No run workers: a queued run stays queued, so its event stream stays open.
    start: { http: true, reconciler: false, runs: false },
    config: {
      apiKeys: [
        apiKeyRecord({ name: "test", hash: `sha256:${createHash("sha256").update(API_KEY).digest("hex")}`, scopes: ["admin"] }),
        record(a, "reader-a"),
        record(b, "reader-b"),
      ],
      http: { ...DEFAULT_HTTP_SETTINGS, metrics: null, requestTimeoutMs: 1000, maxConnections: MAX_CONNECTIONS, ssePerKey: 2, sseTotal: 3 },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

const port = () => Number(new URL(h.baseUrl).port);
const open = () =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(port(), "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });

describe("connections", () => {
  it("closes connections beyond the cap at once, and serves again when one closes", async () => {
    const held: Socket[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) held.push(await open());
    const extra = await open();
    const outcome = await new Promise<string>((resolve) => {
      let data = "";
      extra.on("data", (d: Buffer) => (data += d.toString()));
      extra.on("close", () => resolve(data === "" ? "closed without an answer" : data));
      extra.on("error", () => undefined);
      extra.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    });
    expect(outcome).toBe("closed without an answer");
    expect(held.every((s) => !s.destroyed)).toBe(true);
    for (const s of held) s.destroy();
    await waitFor("a free connection", async () => (await fetch(`${h.baseUrl}/healthz`)).status === 200 || undefined);
  });

  it("cuts off a request whose body trickles in (408) long before it is complete", async () => {
    const s = await open();
    let answer = "";
    let sent = 0;
    const closed = new Promise<void>((resolve) => s.on("close", () => resolve()));
    s.on("data", (d: Buffer) => (answer += d.toString()));
    s.on("error", () => undefined);
    s.write("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 200\r\n\r\n");
    let done = false;
    void closed.then(() => (done = true));
    while (!done && sent < 200) {
      s.write("x");
      sent++;
      await new Promise((r) => setTimeout(r, 100));
    }
    await closed;
    // 1 s allowed, checked every 250 ms; at a byte per 100 ms the body would take 20 s.
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(sent).toBeLessThan(60);
  });
});

describe("run event streams", () => {
  it("flush their headers at once and are capped per key and in all", async () => {
    const queued = await h.api("POST", "/api/stacks/shared-prod-use1-01/runs");
    expect(queued.status).toBe(202);
    const runId = (queued.json.run as { id: string }).id;
    const streams: AbortController[] = [];
    const stream = async (key: string) => {
      const ctl = new AbortController();
      // No event exists yet and the first keep-alive comes after 15 s: only flushed headers answer within 5 s.
      const timeout = setTimeout(() => ctl.abort(), 5000);
      const res = await fetch(`${h.baseUrl}/api/runs/${runId}/events`, { headers: { "x-api-key": key }, signal: ctl.signal });
      clearTimeout(timeout);
      if (res.status === 200) {
        streams.push(ctl);
        return { status: res.status, type: res.headers.get("content-type"), body: "" };
      }
      return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
    };
    try {
      expect(await stream(a.key)).toEqual({ status: 200, type: "text/event-stream; charset=utf-8", body: "" });
      expect((await stream(a.key)).status).toBe(200);
      const perKey = await stream(a.key);
      expect(perKey.status).toBe(429);
      expect(JSON.parse(perKey.body)).toEqual({ error: { message: "API key reader-a already has 2 event streams open (TENANCY_SSE_PER_KEY); close one first" } });
      expect((await stream(b.key)).status).toBe(200);
      const total = await stream(b.key);
      expect(total.status).toBe(503);
      expect(JSON.parse(total.body)).toEqual({ error: { message: "the control plane has 3 event streams open (TENANCY_SSE_TOTAL); retry later" } });
      // A closed stream frees its place.
      streams.shift()!.abort();
      await waitFor("a free stream", async () => (await stream(b.key)).status === 200 || undefined, 10_000, 200);
    } finally {
      for (const c of streams) c.abort();
    }
  });

  it("count a console session's streams against its key: the session's EventSource request is refused past the key's cap", async () => {
    const queued = await h.api("POST", "/api/stacks/shared-prod-use1-02/runs");
    expect(queued.status).toBe(202);
    const runId = (queued.json.run as { id: string }).id;
    // A console session of reader-a, logged in through the form.
    const form = await fetch(`${h.baseUrl}/console/login`);
    const formCookie = form.headers.getSetCookie().find((c) => c.startsWith("tenancy_console_login="))!.split(";")[0]!;
    const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
    const login = await fetch(`${h.baseUrl}/console/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: formCookie },
      body: new URLSearchParams({ key: a.key, _csrf: token }),
    });
    expect(login.status).toBe(303);
    const cookie = login.headers.getSetCookie().find((c) => c.startsWith("tenancy_console="))!.split(";")[0]!;
    const streams: AbortController[] = [];
    const stream = async (headers: Record<string, string>) => {
      const ctl = new AbortController();
      const timeout = setTimeout(() => ctl.abort(), 5000);
      const res = await fetch(`${h.baseUrl}/api/runs/${runId}/events`, { headers: { accept: "text/event-stream", ...headers }, signal: ctl.signal });
      clearTimeout(timeout);
      if (res.status === 200) streams.push(ctl);
      return { status: res.status, body: res.status === 200 ? "" : await res.text() };
    };
    try {
      // Headers at once for the session's stream too (no event yet, the first keep-alive after 15 s).
      expect(await stream({ cookie })).toEqual({ status: 200, body: "" });
      expect((await stream({ "x-api-key": a.key })).status).toBe(200);
      const third = await stream({ cookie });
      expect(third.status).toBe(429);
      expect(JSON.parse(third.body)).toEqual({ error: { message: "API key reader-a already has 2 event streams open (TENANCY_SSE_PER_KEY); close one first" } });
    } finally {
      for (const c of streams) c.abort();
    }
  });
});

describe("inputs", () => {
  const now = () => Math.floor(Date.now() / 1000);

  it("rejects a Stripe metadata.tenant_id that is not a tenant id where it enters; nothing is written", async () => {
    const event = subscriptionEvent("evt_traversal", "customer.subscription.created", now(), {
      id: "sub_traversal", status: "active", price: "price_standard_monthly", metadata: { tenant_id: "../../etc" },
    });
    const res = await h.post(event);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ outcome: "rejected", reason: expect.stringMatching(/^metadata\.tenant_id "\.\.\/\.\.\/etc" is not a tenant id/) });
    const { rows } = await h.cp.db.pool.query<{ outcome: string }>("SELECT outcome FROM billing_events WHERE id = 'evt_traversal'");
    expect(rows).toEqual([{ outcome: "rejected" }]);
    expect(await count(h, "SELECT 1 FROM changes")).toBe(0);
  });

  it("refuses a Stripe signature timestamp more than 300 s in the future; 200 s ahead passes", async () => {
    const body = (id: string) => JSON.stringify(subscriptionEvent(id, "customer.subscription.created", now(), { id: `sub_${id}`, status: "active", price: "price_standard_monthly", metadata: { tenant_id: `t-${id.slice(4)}` } }));
    const ahead = body("evt_future");
    const refused = await h.post(undefined, { body: ahead, signature: sign(ahead, { timestamp: now() + 600 }) });
    expect(refused.status).toBe(400);
    expect((refused.json.error as { message: string }).message).toMatch(/^Stripe signature timestamp is 60\ds in the future \(more than 300s are refused\)/);
    const near = body("evt_nearfuture");
    expect((await h.post(undefined, { body: near, signature: sign(near, { timestamp: now() + 200 }) })).status).toBe(200);
  });

  it("answers 400, not 500, to JSON nested too deeply", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const res = await fetch(`${h.baseUrl}/api/tenants`, { method: "POST", headers: { "x-api-key": API_KEY, "content-type": "application/json" }, body: deep });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { message: "the JSON body nests deeper than 32 levels; no request of this API needs that" } });
    // Nesting within the limit reaches the handler (which wants an object), and prototype poisoning is still refused.
    const shallow = await h.api("POST", "/api/tenants", [[[[1]]]]);
    expect(shallow.status).toBe(400);
    expect((shallow.json.error as { message: string }).message).toMatch(/^send the tenant as a JSON object/);
    const poisoned = await fetch(`${h.baseUrl}/api/tenants`, { method: "POST", headers: { "x-api-key": API_KEY, "content-type": "application/json" }, body: '{"id":"x","__proto__":{"admin":true}}' });
    expect(poisoned.status).toBe(400);
  });
});
