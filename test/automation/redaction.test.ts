/**
 * Nothing secret reaches a log line or a stored run: keys in query strings, headers and fields
 * that carry secrets, connection strings in messages, and stack outputs marked secret.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, maskSecrets } from "../../automation/log.ts";
import { maskSecretOutputs } from "../../automation/runs/outputs.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const capture = () => {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) {
        if (!l.trim()) continue;
        raw.push(l);
        lines.push(JSON.parse(l) as Record<string, unknown>);
      }
      done();
    },
  });
  return { lines, raw, sink };
};

describe("log redaction", () => {
  it("masks keys, signatures, passwords and connection strings by field and inside text", async () => {
    const { lines, raw, sink } = capture();
    const log = createLogger("info", sink);
    log.info(
      {
        headers: { "x-api-key": "tcp_0123456789ab_headerSecret", "stripe-signature": "t=1,v1=sigSecret", authorization: "Bearer bearerSecret" },
        password: "pwSecret",
        db: { connectionString: "postgres://app:connSecret@db:5432/app", password: "nestedPwSecret" },
        detail: "connect to postgres://admin:textSecret@db.internal:5432/x failed; key tcp_abcdef012345_textKeySecret; whsec_webhookSecret1",
        err: new Error("login with password=errSecret failed"),
      },
      "using tcp_0123456789ab_msgSecret against postgresql://u:msgPwSecret@h/db",
    );
    await new Promise((r) => setImmediate(r));
    const text = raw.join("\n");
    for (const secret of ["headerSecret", "sigSecret", "bearerSecret", "pwSecret", "connSecret", "nestedPwSecret", "textSecret", "textKeySecret", "webhookSecret1", "errSecret", "msgSecret", "msgPwSecret"]) {
      expect(text, secret).not.toContain(secret);
    }
    const l = lines[0]!;
    expect(l.msg).toBe("using tcp_0123456789ab_[redacted] against postgresql://u:[redacted]@h/db");
    expect(l.headers).toEqual({ "x-api-key": "[redacted]", "stripe-signature": "[redacted]", authorization: "[redacted]" });
    expect(l.db).toEqual({ connectionString: "[redacted]", password: "[redacted]" });
    expect(l.detail).toBe("connect to postgres://admin:[redacted]@db.internal:5432/x failed; key tcp_abcdef012345_[redacted]; whsec_[redacted]");
    // What is not secret stays readable (negative control).
    expect(maskSecrets("GET /api/tenants/acme as key ci (0123456789ab)")).toBe("GET /api/tenants/acme as key ci (0123456789ab)");
  });

  it("masks secret stack outputs and leaves the others", () => {
    expect(maskSecretOutputs({ endpoint: { value: "db.example", secret: false }, password: { value: "p", secret: true } })).toEqual({
      endpoint: { value: "db.example", secret: false },
      password: { value: "[secret]", secret: true },
    });
  });
});

describe("on a running control plane", () => {
  let pg: TestPostgres;
  let h: Harness;
  const { lines, raw, sink } = capture();
  beforeAll(async () => {
    pg = await startTestPostgres();
    h = await startHarness({
      pg,
      deps: { log: createLogger("info", sink) },
      fake: { outputs: { "shared-prod-use1-01": { endpoint: { value: "cell.db.example", secret: false }, masterPassword: { value: "hunter2-output-secret", secret: true } } } },
    });
  });
  afterAll(async () => {
    await h?.close();
    await pg?.stop();
  });

  it("never logs a key sent in the query string; URLs are logged without it", async () => {
    const r1 = await fetch(`${h.baseUrl}/api/tenants/acme?api_key=queryKeySecret1&x=1`);
    expect(r1.status).toBe(401);
    const r2 = await fetch(`${h.baseUrl}/nowhere?token=queryKeySecret2`);
    expect(r2.status).toBe(404);
    await r1.text();
    await r2.text();
    await waitFor("the request lines", () => lines.filter((l) => l.msg === "request completed").length >= 2 || undefined);
    expect(raw.join("\n")).not.toMatch(/queryKeySecret/);
    const urls = lines.filter((l) => l.msg === "incoming request").map((l) => (l.req as { url: string }).url);
    expect(urls).toEqual(expect.arrayContaining(["/api/tenants/acme?[query omitted]", "/nowhere?[query omitted]"]));
  });

  it("stores and serves a run's secret outputs masked", async () => {
    const queued = await h.api("POST", "/api/stacks/shared-prod-use1-01/runs");
    expect(queued.status).toBe(202);
    const id = (queued.json.run as { id: string }).id;
    const run = await waitFor("the run", async () => {
      const r = (await h.api("GET", `/api/runs/${id}`)).json.run as { state: string; output: { outputs: Record<string, unknown> } };
      return r.state === "succeeded" ? r : undefined;
    });
    expect(run.output.outputs).toEqual({
      endpoint: { value: "cell.db.example", secret: false },
      masterPassword: { value: "[secret]", secret: true },
    });
    const { rows } = await h.cp.db.pool.query<{ output: string }>("SELECT output::text AS output FROM runs WHERE id = $1", [id]);
    expect(rows[0]!.output).toContain("cell.db.example");
    expect(rows[0]!.output).not.toContain("hunter2-output-secret");
    expect(raw.join("\n")).not.toContain("hunter2-output-secret");
  });
});
