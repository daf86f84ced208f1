/**
 * Scoped API keys on a running control plane: every /api route allows exactly the keys holding
 * its scope (a table walk over ROUTE_SCOPES), the offboarding grace minimum, expiry, the key
 * recorded on runs and in the log, reloads, and failed-attempt limits under a scrypt-key flood.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadApiKeys, newApiKey, newScryptApiKey } from "../../automation/http/apiKeys.ts";
import { registerAuth } from "../../automation/http/auth.ts";
import { ApiKeyRing } from "../../automation/http/keyRing.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../automation/http/settings.ts";
import { holdsScope, ROUTE_SCOPES, SCOPE_NAMES, SCOPES, type Scope } from "../../automation/http/scopes.ts";
import { createLogger } from "../../automation/log.ts";
import { API_KEY, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { API_SAMPLES as SAMPLES } from "./support/routeSamples.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createHash } from "node:crypto";

const FAILURE_LIMIT = 10;

// One key per scope, named k-<scope>; an expired one; the harness's admin key; a scrypt key.
const perScope = new Map(SCOPE_NAMES.map((s) => [s, newApiKey(`k-${s}`, [s])]));
const expired = newApiKey("k-expired", ["admin"]);
const chosen = newScryptApiKey("k-scrypt", "a long passphrase someone chose", ["read"], 16_384, 8, 1);
const late = newApiKey("k-late", ["read"]);
const keyDir = mkdtempSync(join(tmpdir(), "tenancy-scope-keys-"));
const keyFile = join(keyDir, "api-keys.yaml");
const fileText = (extra = "") =>
  `keys:\n${[...perScope.values()].map((k) => k.yaml).join("\n")}\n${expired.yaml}\n    expires: 2020-01-01\n${chosen.yaml}\n` +
  `  - name: test\n    hash: sha256:${createHash("sha256").update(API_KEY).digest("hex")}\n    scopes: [admin]\n${extra}`;

let pg: TestPostgres;
let h: Harness;
const lines: Record<string, unknown>[] = [];
beforeAll(async () => {
  pg = await startTestPostgres();
  writeFileSync(keyFile, fileText());
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  h = await startHarness({
    pg,
    deps: { log: createLogger("info", sink) },
    config: {
      apiKeys: loadApiKeys(keyFile),
      apiKeysFile: keyFile,
      http: { ...DEFAULT_HTTP_SETTINGS, metrics: null, minOffboardGraceDays: 30, authFailuresPerMinute: FAILURE_LIMIT, trustProxy: ["127.0.0.1"] },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

const call = async (method: string, path: string, key: string | null, opts: { body?: unknown; client?: string } = {}) => {
  const res = await fetch(`${h.baseUrl}${path}`, {
    method,
    headers: {
      ...(key ? { "x-api-key": key } : {}),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
      ...(opts.client ? { "x-forwarded-for": opts.client } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: (text ? JSON.parse(text) : {}) as { error?: { message: string; missingScope?: string } } & Record<string, unknown> };
};

describe("scopes", () => {
  it("every /api route the server registered is in the scope table and has a sample here, and nothing else is", () => {
    const registered = [...new Set(h.cp.server.registeredRoutes.filter((r) => r.includes(" /api/") && !r.startsWith("HEAD ")))].sort();
    expect(registered).toEqual(Object.keys(ROUTE_SCOPES).sort());
    expect(Object.keys(SAMPLES).sort()).toEqual(registered);
  });

  it("a server with an /api route missing from the table does not start", async () => {
    const app = Fastify();
    app.register(async (api) => {
      await registerAuth(api, new ApiKeyRing([], { log: createLogger("silent") }), 5);
      api.get("/api/tenants/:id/secrets", async () => ({}));
    });
    await expect(app.ready()).rejects.toThrow("route GET /api/tenants/:id/secrets declares no scope: add it to ROUTE_SCOPES in automation/http/scopes.ts");
    await app.close();
  });

  it("allows each route exactly the keys holding its scope; refusals are 403 naming the missing scope", async () => {
    const table: string[] = [];
    for (const [route, needed] of Object.entries(ROUTE_SCOPES)) {
      const [method] = route.split(" ") as [string];
      const sample = SAMPLES[route]!;
      for (const scope of SCOPE_NAMES) {
        const res = await call(method, sample.path, perScope.get(scope)!.key, sample.body !== undefined ? { body: sample.body } : {});
        const allowed = holdsScope(new Set<Scope>([scope]), needed);
        table.push(`${route} ${scope} ${res.status}`);
        if (allowed) {
          expect(res.status, `${route} with ${scope}`).toBe(sample.reached);
        } else {
          expect(res.status, `${route} with ${scope}`).toBe(403);
          expect(res.json.error?.message).toBe(
            `API key k-${scope} lacks scope ${needed} (${SCOPES[needed]}), which ${route} needs; it holds ${scope}`,
          );
          expect(res.json.error?.missingScope).toBe(needed);
        }
      }
    }
    // Each route: exactly its own scope and admin (offboard:immediate is not offboard).
    const allowedCount = table.filter((l) => !l.endsWith(" 403")).length;
    expect(allowedCount).toBe(Object.keys(ROUTE_SCOPES).length * 2);
  });

  it("refuses a grace period below the minimum without offboard:immediate, even for admin", async () => {
    for (const [key, name] of [[perScope.get("offboard")!.key, "k-offboard"], [API_KEY, "test"]] as const) {
      for (const grace of ["0", "29"]) {
        const res = await call("DELETE", `/api/tenants/acme?graceDays=${grace}`, key);
        expect(res.status, `${name} graceDays=${grace}`).toBe(403);
        expect(res.json.error?.message).toBe(
          `graceDays=${grace} is below the minimum of 30 days (TENANCY_API_MIN_GRACE_DAYS): a shorter grace period needs a key with scope offboard:immediate; ask again with graceDays of 30 or more, or leave it out`,
        );
        expect(res.json.error?.missingScope).toBe("offboard:immediate");
      }
    }
    expect(h.repo.show("main", "tenants/acme.yaml")).not.toContain("offboarding");
    // The minimum itself passes the check (404: the handler ran; no such tenant).
    expect((await call("DELETE", "/api/tenants/no-such-co?graceDays=30", perScope.get("offboard")!.key)).status).toBe(404);
    // A key holding both may go below it.
    const both = newApiKey("k-both", ["offboard", "offboard:immediate"]);
    writeFileSync(keyFile, fileText(`${both.yaml}\n`));
    await waitFor("the new key", async () => (await call("DELETE", "/api/tenants/no-such-co?graceDays=0", both.key)).status === 404 || undefined);
    // offboard:immediate alone is not offboard.
    expect((await call("DELETE", "/api/tenants/no-such-co?graceDays=0", perScope.get("offboard:immediate")!.key)).status).toBe(403);
  });

  it("refuses an expired key (401 naming it) and picks up a key added to the file", async () => {
    const res = await call("GET", "/api/tenants/acme", expired.key, { client: "198.51.100.1" });
    expect(res.status).toBe(401);
    expect(res.json.error?.message).toBe("API key k-expired expired at 2020-01-01T00:00:00.000Z; ask for a new one");
    expect((await call("GET", "/api/tenants/acme", late.key, { client: "198.51.100.2" })).status).toBe(401);
    writeFileSync(keyFile, fileText(`${late.yaml}\n`));
    await waitFor("the added key", async () => (await call("GET", "/api/tenants/acme", late.key, { client: "198.51.100.3" })).status === 200 || undefined);
  });

  it("records the key on the runs it asked for and in the request's log lines", async () => {
    const queued = await call("POST", "/api/stacks/shared-prod-use1-01/runs", perScope.get("runs")!.key);
    expect(queued.status).toBe(202);
    const run = queued.json.run as { id: string; apiKeys: string[] };
    expect(run.apiKeys).toEqual(["k-runs"]);
    const created = await call("POST", "/api/tenants", perScope.get("tenants:write")!.key, {
      body: { id: "scoped-co", displayName: "Scoped", tier: "standard", region: "us-east-1", environments: { prod: {} } },
    });
    expect(created.status).toBe(201);
    const runId = (created.json.change as { runs: { runId: string }[] }).runs[0]!.runId;
    const shown = await call("GET", `/api/runs/${runId}`, perScope.get("read")!.key);
    expect((shown.json.run as { apiKeys: string[] }).apiKeys).toEqual(["k-tenants:write"]);
    const keyed = lines.filter((l) => l.msg === "request completed" && l.apiKey === "k-runs");
    expect(keyed.length).toBeGreaterThan(0);
    expect(keyed[0]!.apiKeyId).toBe(perScope.get("runs")!.id);
  });
});

describe("failed key attempts", () => {
  const wrong = (i: number) => `tcp_${chosen.id}_wrong passphrase ${i}`;

  it("a flood of wrong scrypt keys from many clients leaves /healthz answering", async () => {
    // Health checks completed in a window; the baseline's window grows until it holds at least 15,
    // so that a third of it still tells a loaded machine (a few checks a second) from a stalled
    // event loop (0 or 1 in the window with scryptSync).
    const countHealth = async (ms: number, atLeast = 0) => {
      const start = Date.now();
      let n = 0;
      while (Date.now() < start + ms || n < atLeast) {
        const r = await fetch(`${h.baseUrl}/healthz`);
        expect(r.status).toBe(200);
        await r.arrayBuffer();
        n++;
      }
      return { n, ms: Date.now() - start };
    };
    const { n: baseline, ms: window } = await countHealth(3000, 15);
    let stop = false;
    let sent = 0;
    const statuses = new Map<number, number>();
    const flooder = async (w: number) => {
      for (let i = 0; !stop; i++) {
        // A new client address each time: the per-client limit never applies, every request costs a scrypt check.
        const r = await call("GET", "/api/tenants/acme", wrong(i), { client: `10.${w}.${(i >> 8) & 255}.${i & 255}` });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        sent++;
      }
    };
    const flood = Promise.all(Array.from({ length: 8 }, (_, w) => flooder(w)));
    const { n: during } = await countHealth(window);
    stop = true;
    await flood;
    // Each check costs 16 MiB of scrypt on the thread pool, never on the event loop: health
    // checks go on at a third of their pace or better (with scryptSync: 0 or 1 in the window).
    expect(sent).toBeGreaterThan(4);
    expect([...statuses.keys()].every((s) => s === 401 || s === 503)).toBe(true);
    expect(during, `health checks: ${during} during the flood, ${baseline} before (${window} ms windows)`).toBeGreaterThanOrEqual(Math.floor(baseline / 3));
  });

  it("answers 429 after the limit per client, before checking the key, and logs each failure with the client address", async () => {
    const attacker = "203.0.113.99";
    const statuses: number[] = [];
    for (let i = 0; i < FAILURE_LIMIT + 5; i++) statuses.push((await call("GET", "/api/tenants/acme", wrong(i), { client: attacker })).status);
    expect(statuses).toEqual([...Array(FAILURE_LIMIT).fill(401), ...Array(5).fill(429)]);
    const limited = await call("GET", "/api/tenants/acme", API_KEY, { client: attacker });
    expect(limited.status).toBe(429);
    expect(limited.json.error?.message).toMatch(/^too many failed API key attempts from 203\.0\.113\.99; try again in \d+ s$/);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another client is not affected.
    expect((await call("GET", "/api/tenants/acme", API_KEY, { client: "203.0.113.100" })).status).toBe(200);
    const warned = lines.filter((l) => l.level === 40 && l.client === attacker);
    expect(warned.filter((l) => l.msg === "API key refused")).toHaveLength(FAILURE_LIMIT);
    expect(warned.filter((l) => l.msg === "client over the failed API key attempt limit; key not checked")).toHaveLength(6);
    // The key itself never reaches the log.
    expect(JSON.stringify(lines)).not.toContain("wrong passphrase");
  });

  it("limits failed console logins per client in the same budget as API keys: 429 after the limit even with a right key, each failure warn-logged with the address", async () => {
    let attacker = "203.0.113.77";
    const login = async (key: string) => {
      const form = await fetch(`${h.baseUrl}/console/login`, { headers: { "x-forwarded-for": attacker } });
      const cookie = form.headers.getSetCookie().find((c) => c.startsWith("tenancy_console_login="))!.split(";")[0]!;
      const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
      const res = await fetch(`${h.baseUrl}/console/login`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie, "x-forwarded-for": attacker },
        body: new URLSearchParams({ key, _csrf: token }),
      });
      return { status: res.status, retryAfter: res.headers.get("retry-after"), text: await res.text() };
    };
    const statuses: number[] = [];
    for (let i = 0; i < FAILURE_LIMIT + 2; i++) statuses.push((await login(wrong(i))).status);
    expect(statuses).toEqual([...Array(FAILURE_LIMIT).fill(401), 429, 429]);
    const right = await login(perScope.get("read")!.key);
    expect(right.status).toBe(429);
    expect(Number(right.retryAfter)).toBeGreaterThan(0);
    expect(right.text).toMatch(/Too many refused keys from 203\.0\.113\.77; try again in \d+ s\./);
    const warned = lines.filter((l) => l.level === 40 && l.client === attacker && l.msg === "console login refused");
    expect(warned).toHaveLength(FAILURE_LIMIT);
    expect(warned[0]!.reason).toBe("unknown key");
    expect(JSON.stringify(lines)).not.toContain("wrong passphrase");
    // One budget for both doors: wrong keys at /api use up the login form's attempts, and the other way round.
    attacker = "203.0.113.78";
    for (let i = 0; i < FAILURE_LIMIT - 1; i++) expect((await call("GET", "/api/tenants/acme", wrong(i), { client: attacker })).status).toBe(401);
    expect((await login(wrong(99))).status).toBe(401);
    expect((await login(perScope.get("read")!.key)).status).toBe(429);
    expect((await call("GET", "/api/tenants/acme", API_KEY, { client: attacker })).status).toBe(429);
  });
});

