/**
 * Operator console sessions over HTTP (no browser: the browser tests are test/console/): the
 * login exchanging a key for the session cookie, the cookie standing for its key at the /api door,
 * the CSRF token every change needs, expiry of sessions and keys, logout, and the read endpoints
 * the console added (GET /api/fleet, GET /api/runs, the committed file of GET /api/tenants/:id).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadApiKeys } from "../../automation/http/apiKeys.ts";
import { costReport } from "../../cli/commands/cost.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { ASSUMPTION_NOTES, PRICES_AS_OF } from "../../plan/cost/prices.ts";
import { runtimeConfigParameter } from "../../infra/model/runtimeConfig.ts";
import { API_KEY, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const READER_KEY = "tcp_reader_key_of_the_console_session_tests";
const SHORT_KEY = "tcp_short_lived_key_of_the_console_session_tests";
const sha = (k: string) => `sha256:${createHash("sha256").update(k).digest("hex")}`;
let pg: TestPostgres;
let h: Harness;
let tmp: string;
let keysFile: string;

/** Writes the key file (test, reader, and optionally short with an expiry) and puts it in force. */
function keys(short?: Date) {
  const entries = [
    { name: "test", hash: sha(API_KEY), scopes: ["admin"] },
    { name: "reader", hash: sha(READER_KEY), scopes: ["read"] },
    ...(short ? [{ name: "short", hash: sha(SHORT_KEY), scopes: ["admin"], expires: short.toISOString() }] : []),
  ];
  writeFileSync(keysFile, `keys:\n${entries.map((e) => `  - name: ${e.name}\n    hash: ${e.hash}\n    scopes: [${e.scopes.join(", ")}]\n${"expires" in e ? `    expires: "${e.expires}"\n` : ""}`).join("")}`);
  if (h) expect(h.cp.keys.reload("test")).toBe(true);
}

beforeAll(async () => {
  pg = await startTestPostgres();
  tmp = mkdtempSync(join(tmpdir(), "tenancy-console-keys-"));
  keysFile = join(tmp, "api-keys.yaml");
  keys();
  h = await startHarness({ pg, start: { runs: false }, config: { apiKeys: loadApiKeys(keysFile), apiKeysFile: keysFile } });
}, 60_000);
afterAll(async () => {
  await h?.close();
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The login form's CSRF token and its cookie, as a browser gets them from GET /console/login. */
async function loginForm(): Promise<{ cookie: string; token: string; set: string }> {
  const res = await fetch(`${h.baseUrl}/console/login`);
  const set = res.headers.getSetCookie().find((c) => c.startsWith("tenancy_console_login="))!;
  const token = /name="_csrf" value="([^"]+)"/.exec(await res.text())![1]!;
  return { cookie: set.split(";")[0]!, token, set };
}

/** POST /console/login as the form does; `form` replaces the token or the cookie sent (undefined: none). */
async function login(key: string, form?: { cookie?: string; token?: string }): Promise<Response> {
  const f = form ?? (await loginForm());
  return fetch(`${h.baseUrl}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(f.cookie !== undefined ? { cookie: f.cookie } : {}) },
    body: new URLSearchParams({ key, ...(f.token !== undefined ? { _csrf: f.token } : {}) }),
  });
}

/** The session cookie a response sets (the login form's own cookie is another one). */
const sessionCookie = (res: Response) => res.headers.getSetCookie().find((c) => c.startsWith("tenancy_console="));

async function session(key: string): Promise<{ cookie: string; csrf: string }> {
  const res = await login(key);
  expect(res.status).toBe(303);
  const cookie = sessionCookie(res)!.split(";")[0]!;
  const page = await (await fetch(`${h.baseUrl}/console/runs`, { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
  return { cookie, csrf };
}

const call = async (method: string, path: string, headers: Record<string, string>) => {
  const res = await fetch(`${h.baseUrl}${path}`, { method, headers, redirect: "manual" });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, json, headers: res.headers };
};
const message = (json: Record<string, unknown>) => (json.error as { message: string }).message;

describe("console sessions", () => {
  it("refuses a wrong or empty key with 401 and no cookie", async () => {
    for (const key of ["tcp_wrong", ""]) {
      const res = await login(key);
      expect(res.status).toBe(401);
      expect(sessionCookie(res)).toBeUndefined();
      expect(await res.text()).toContain("That API key was refused");
    }
  });

  it("refuses a login post without the login form's CSRF token and cookie (a form posted from another site), even with a valid key", async () => {
    const form = await loginForm();
    // The token's cookie: only for the login path, not readable by scripts, never sent cross-site.
    const [pair, ...attrs] = form.set.split("; ");
    expect(pair).toMatch(/^tenancy_console_login=[A-Za-z0-9_-]{43}$/);
    expect(attrs.sort()).toEqual(["HttpOnly", "Max-Age=3600", "Path=/console/login", "SameSite=Strict", "Secure"]);
    const other = await loginForm();
    const refusals = [
      {}, // what a cross-site form post carries: no token, and (SameSite=Strict) no cookie
      { token: form.token }, // a token copied without its cookie
      { cookie: form.cookie }, // the cookie without the form's token
      { cookie: form.cookie, token: other.token }, // another form's token
      { cookie: form.cookie, token: "" },
    ];
    for (const f of refusals) {
      const res = await login(API_KEY, f);
      expect(res.status).toBe(403);
      expect(sessionCookie(res)).toBeUndefined();
      expect(await res.text()).toContain("This login did not come from this console&#39;s login form");
    }
    expect((await login(API_KEY, form)).status).toBe(303);
  });

  it("sets an HTTP-only, Secure, SameSite=Strict cookie expiring in 8 hours that holds no key", async () => {
    const res = await login(API_KEY);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/console/fleet");
    const set = sessionCookie(res)!;
    const [pair, ...attrs] = set.split("; ");
    expect(pair).toMatch(/^tenancy_console=[A-Za-z0-9_-]{43}$/);
    expect(pair).not.toContain(API_KEY);
    expect(attrs.filter((a) => !a.startsWith("Expires=")).sort()).toEqual(["HttpOnly", "Path=/", "SameSite=Strict", "Secure"]);
    const expires = new Date(attrs.find((a) => a.startsWith("Expires="))!.slice("Expires=".length));
    expect(Math.abs(expires.getTime() - (Date.now() + 8 * 3_600_000))).toBeLessThan(60_000);
    // The database holds a digest of the token, never the token or the key.
    const { rows } = await h.cp.db.pool.query<{ token_sha256: Buffer; key_name: string }>("SELECT token_sha256, key_name FROM console_sessions");
    const token = pair!.split("=")[1]!;
    expect(rows.map((r) => [r.token_sha256.toString("hex"), r.key_name])).toContainEqual([createHash("sha256").update(token).digest("hex"), "test"]);
  });

  it("lets the session read the API, and change something only with its CSRF token in x-csrf-token", async () => {
    const s = await session(API_KEY);
    expect((await call("GET", "/api/rollouts", { cookie: s.cookie })).status).toBe(200);
    const none = await call("POST", "/api/stacks/shared-prod-use1-09/runs", { cookie: s.cookie });
    expect(none.status).toBe(403);
    expect(message(none.json)).toBe("POST with a console session needs the session's CSRF token in the x-csrf-token header; reload the console page and try again");
    const wrong = await call("POST", "/api/stacks/shared-prod-use1-09/runs", { cookie: s.cookie, "x-csrf-token": `${s.csrf}x` });
    expect(wrong.status).toBe(403);
    // With the token the request reaches the handler (which finds no such stack file).
    const right = await call("POST", "/api/stacks/shared-prod-use1-09/runs", { cookie: s.cookie, "x-csrf-token": s.csrf });
    expect(right.status).toBe(404);
    expect(message(right.json)).toBe("no stack file stacks/Pulumi.shared-prod-use1-09.yaml on main");
  });

  it("keeps the key's scopes: a read-only key's session is refused an action", async () => {
    const s = await session(READER_KEY);
    const res = await call("POST", "/api/stacks/shared-prod-use1-01/runs", { cookie: s.cookie, "x-csrf-token": s.csrf });
    expect(res.status).toBe(403);
    expect(message(res.json)).toMatch(/^API key reader lacks scope runs /);
    // The console's action page shows the API's refusal.
    const form = await fetch(`${h.baseUrl}/console/stacks/shared-prod-use1-01/run`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: s.cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ _csrf: s.csrf }),
    });
    expect(form.status).toBe(403);
    expect(await form.text()).toContain("API key reader lacks scope runs");
  });

  it("refuses an expired session and the session of an expired key", async () => {
    const s = await session(API_KEY);
    await h.cp.db.pool.query("UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE key_name = 'test'");
    const res = await call("GET", "/api/rollouts", { cookie: s.cookie });
    expect(res.status).toBe(401);
    expect(message(res.json)).toBe("console session unknown or expired; log in again at /console/login");
    expect((await call("GET", "/console/fleet", { cookie: s.cookie })).headers.get("location")).toBe("/console/login");

    const shortExpiry = new Date(Date.now() + 1_500);
    keys(shortExpiry);
    const short = await session(SHORT_KEY);
    expect((await call("GET", "/api/rollouts", { cookie: short.cookie })).status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, shortExpiry.getTime() - Date.now() + 50)));
    const expired = await call("GET", "/api/rollouts", { cookie: short.cookie });
    expect(expired.status).toBe(401);
    expect(message(expired.json)).toBe(`API key short expired at ${shortExpiry.toISOString()}; ask for a new one`);
  });

  it("ends the sessions of a key removed from TENANCY_API_KEYS", async () => {
    keys(new Date(Date.now() + 3_600_000));
    const s = await session(SHORT_KEY);
    expect((await call("GET", "/api/rollouts", { cookie: s.cookie })).status).toBe(200);
    keys();
    const res = await call("GET", "/api/rollouts", { cookie: s.cookie });
    expect(res.status).toBe(401);
    expect(message(res.json)).toBe("API key short of this console session is no longer in TENANCY_API_KEYS; log in again with a current key");
    expect((await call("GET", "/console/fleet", { cookie: s.cookie })).headers.get("location")).toBe("/console/login");
  });

  it("logs out only with the CSRF token, and the session ends on the server", async () => {
    const s = await session(API_KEY);
    const post = (body: Record<string, string>) =>
      fetch(`${h.baseUrl}/console/logout`, { method: "POST", redirect: "manual", headers: { cookie: s.cookie, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(body) });
    expect((await post({})).status).toBe(403);
    expect((await call("GET", "/api/rollouts", { cookie: s.cookie })).status).toBe(200);
    const out = await post({ _csrf: s.csrf });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^tenancy_console=; /);
    expect((await call("GET", "/api/rollouts", { cookie: s.cookie })).status).toBe(401);
  });

  it("serves console pages with a strict Content-Security-Policy and no caching", async () => {
    const s = await session(API_KEY);
    const res = await call("GET", "/console/fleet", { cookie: s.cookie });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(res.headers.get("cache-control")).toBe("no-store");
    // Without a session every page sends the browser to the login page.
    expect((await call("GET", "/console/tenants/acme", {})).headers.get("location")).toBe("/console/login");
  });
});

describe("read endpoints the console uses", () => {
  it("GET /api/fleet lists every region, env, cell with its residents and capacity, and the dedicated stacks", async () => {
    const res = await h.api("GET", "/api/fleet");
    expect(res.status).toBe(200);
    type View = { branch: string; regions: { region: string; envs: { env: string; cells: { stack: string; capacity: number; residents: { id: string }[] }[]; dedicated: { stack: string }[] }[] }[] };
    const v = res.json as unknown as View;
    const compact = v.regions.map((r) => [
      r.region,
      r.envs.map((e) => [e.env, e.cells.map((c) => `${c.stack} ${c.residents.length}/${c.capacity}: ${c.residents.map((t) => t.id).join(",")}`), e.dedicated.map((d) => d.stack)]),
    ]);
    expect(v.branch).toBe("main");
    expect(compact).toEqual([
      [
        "us-east-1",
        [
          ["prod", ["shared-prod-use1-01 2/50: freebie-one,startup-alpha", "shared-prod-use1-02 2/50: company-beta,gamma-labs"], ["dedicated-acme-prod", "dedicated-megacorp-prod"]],
          ["staging", ["shared-staging-use1-01 2/20: gamma-labs,startup-alpha"], ["dedicated-megacorp-staging"]],
          ["dev", [], []],
        ],
      ],
      [
        "eu-west-1",
        [
          ["prod", ["shared-prod-euw1-01 2/50: bigcorp,freebie-two"], ["dedicated-delta-health-prod"]],
          ["staging", [], []],
          ["dev", [], []],
        ],
      ],
    ]);
  });

  it("GET /api/runs filters by state and refuses bad filters", async () => {
    expect((await h.api("GET", "/api/runs?state=queued,running")).json).toEqual({ runs: [] });
    const bad = await h.api("GET", "/api/runs?state=queued,done");
    expect(bad.status).toBe(400);
    expect(message(bad.json)).toBe("state done is not a run state; states are queued, running, succeeded, failed");
    expect((await h.api("GET", "/api/runs?limit=0")).status).toBe(400);
    expect((await h.api("GET", "/api/runs?limit=501")).status).toBe(400);
  });

  it("GET /api/tenants/:id carries the tenant file as committed with the commit that last changed it", async () => {
    const res = await h.api("GET", "/api/tenants/acme");
    const file = res.json.file as Record<string, unknown>;
    const [head] = h.repo.log("main");
    expect(file).toEqual({ path: "tenants/acme.yaml", branch: "main", commit: head!.sha, subject: "example fleet", committedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), text: h.repo.show("main", "tenants/acme.yaml") });
    // Each env's runtime config parameter, as the stack publishes it (infra/model/runtimeConfig.ts).
    const fleet = requireFleet({ projectDir: h.repo.dir });
    const acme = fleet.tenants.get("acme")!.tenant;
    expect(res.json.runtimeConfig).toEqual(Object.keys(acme.environments).map((env) => ({ env, parameter: runtimeConfigParameter(fleet.platform, acme, env).name, value: runtimeConfigParameter(fleet.platform, acme, env).value })));
    expect((res.json.runtimeConfig as { value: string }[])[0]!.value).toContain('"connectionDocument":"tenancy/prod/tenants/acme/database"');
  });

  it("GET /api/fleet loads the fleet files once per commit: a second GET loads nothing, a new commit is answered", async () => {
    const names = async () => {
      const v = (await h.api("GET", "/api/fleet")).json as { regions: { envs: { cells: { residents: { id: string; displayName: string }[] }[] }[] }[] };
      return v.regions.flatMap((r) => r.envs.flatMap((e) => e.cells.flatMap((c) => c.residents))).find((t) => t.id === "freebie-one")?.displayName;
    };
    expect(await names()).toBe("Freebie One");
    const loads = h.cp.fleet.loads;
    expect(await names()).toBe("Freebie One");
    expect(h.cp.fleet.loads).toBe(loads);
    const file = join(h.repo.dir, "tenants", "freebie-one.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("displayName: Freebie One", "displayName: Freebie Renamed"));
    h.repo.git("commit", "--quiet", "-am", "rename freebie-one");
    expect(await names()).toBe("Freebie Renamed");
    expect(await names()).toBe("Freebie Renamed");
    expect(h.cp.fleet.loads).toBe(loads + 1);
  });

  it("GET /api/tenants/:id/cost answers 202 while the tenant's stacks are priced in a worker, then what tenantctl cost allocates to it", async () => {
    const first = await h.api("GET", "/api/tenants/freebie-two/cost");
    expect(first).toEqual({ status: 202, json: { state: "computing", stacks: ["shared-prod-euw1-01"] } });
    const ready = await waitFor("the cost of freebie-two", async () => {
      const r = await h.api("GET", "/api/tenants/freebie-two/cost");
      return r.status === 200 ? r.json : undefined;
    }, 120_000, 500);
    const fleet = requireFleet({ projectDir: h.repo.dir });
    const report = await costReport(fleet, ["shared-prod-euw1-01"]);
    const mine = report.allocation.tenants.find((t) => t.tenant === "freebie-two")!;
    expect(ready).toEqual({
      tenant: "freebie-two",
      pricesAsOf: PRICES_AS_OF,
      assumptions: [...ASSUMPTION_NOTES],
      stacks: mine.stacks,
      monthlyUsd: mine.monthlyUsd,
      unpriced: [],
      unverified: expect.any(Boolean),
    });
    expect(mine.monthlyUsd).toBeGreaterThan(0);
    expect(mine.stacks).toEqual([{ stack: "shared-prod-euw1-01", ownUsd: expect.any(Number), shareUsd: expect.any(Number), residents: 2 }]);
    expect(h.cp.costs.priced).toBe(1);
    expect((await h.api("GET", "/api/tenants/no-such-co/cost")).status).toBe(404);
  }, 150_000);
});
