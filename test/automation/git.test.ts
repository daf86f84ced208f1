import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFleet } from "../../infra/model/fleet.ts";
import { allocateDedicatedCidrs } from "../../infra/model/placement.ts";
import { count, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { makeFixtureRepo } from "./support/repo.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { subscriptionEvent } from "./support/stripe.ts";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const result = async (h: Harness, eventId: string) =>
  waitFor(`the result of ${eventId}`, async () => {
    const { rows } = await h.cp.db.pool.query<{ result: Record<string, unknown> | null }>("SELECT result FROM billing_events WHERE id = $1", [eventId]);
    return rows[0]?.result ?? undefined;
  });

describe("validation before commit", () => {
  let h: Harness;
  const logLines: string[] = [];
  beforeAll(async () => {
    h = await startHarness({ pg, logLines });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("rejects a subscription whose resulting tenant file is invalid, with the model's reason, and commits nothing", async () => {
    const head = h.repo.log()[0]!.sha;
    await h.post(subscriptionEvent("evt_bad_id", "customer.subscription.created", now(), {
      id: "sub_bad_id", status: "active", price: "price_standard_monthly", metadata: { tenant_id: "admin" },
    }));
    await h.post(subscriptionEvent("evt_bad_region", "customer.subscription.created", now(), {
      id: "sub_bad_region", status: "active", price: "price_free", metadata: { tenant_id: "far-away", region: "ap-south-1" },
    }));
    const r1 = await result(h, "evt_bad_id");
    expect(r1).toMatchObject({ outcome: "rejected", tenantId: "admin" });
    expect(r1.message).toMatch(/tenants\/admin\.yaml:\d+: id: .*reserved/);
    const r2 = await result(h, "evt_bad_region");
    expect(r2.message).toMatch(/tenants\/far-away\.yaml:\d+: region: .*ap-south-1.*allowed regions: us-east-1, eu-west-1/);
    const { rows } = await h.cp.db.pool.query("SELECT state, problems FROM changes WHERE tenant_id IN ('admin', 'far-away') ORDER BY tenant_id");
    expect(rows.map((r) => r.state)).toEqual(["rejected", "rejected"]);
    expect(h.repo.log()[0]!.sha).toBe(head);
    expect(h.repo.git("status", "--porcelain")).toBe("");
    expect(await count(h, "SELECT 1 FROM runs")).toBe(0);
    const metrics = await (await fetch(`${h.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/tenancy_billing_events_rejected_total\{stage="change"\} 2/);
  });

  it("never lets subscription metadata claim an existing tenant, and leaves pooled -> dedicated to the upgrade workflow", async () => {
    const head = h.repo.log()[0]!.sha;
    await h.post(subscriptionEvent("evt_claim", "customer.subscription.created", now(), {
      id: "sub_intruder", status: "active", price: "price_enterprise", metadata: { tenant_id: "acme" },
    }));
    expect(await result(h, "evt_claim")).toMatchObject({ outcome: "rejected", message: expect.stringContaining("tenant acme already exists with subscription sub_ACME0001") });
    // startup-alpha pays with sub_ALPHA0001 (tenants/startup-alpha.yaml); its price moves to the dedicated tier.
    await h.post(subscriptionEvent("evt_upgrade", "customer.subscription.updated", now(), {
      id: "sub_ALPHA0001", status: "active", price: "price_dedicated_annual", customer: "cus_ALPHA0001",
    }));
    expect(await result(h, "evt_upgrade")).toMatchObject({
      outcome: "needs-workflow", tenantId: "startup-alpha", message: expect.stringContaining("tenantctl upgrade startup-alpha --to dedicated"),
    });
    expect(h.repo.log()[0]!.sha).toBe(head);
    expect(h.repo.git("branch", "--list", "tenancy/*")).toBe("");
  });

  it("rejects a change the fleet rules refuse (overlapping CIDR) with the model's problem lines, nothing committed", async () => {
    const head = h.repo.log()[0]!.sha;
    const res = await h.api("POST", "/api/tenants", {
      id: "overlap-co", displayName: "Overlap", tier: "dedicated", region: "us-east-1", environments: { prod: {} },
      dedicated: { prod: { cidr: "10.66.0.0/16" } },
    });
    expect(res.status).toBe(422);
    const err = res.json.error as { message: string; problems: string[] };
    expect(err.message).toMatch(/^the resulting tenant spec is invalid; nothing was committed: /);
    expect(err.problems.join("\n")).toMatch(/10\.66\.0\.0\/16 .*overlaps/);
    expect(err.problems.join("\n")).not.toContain(tmpdir());
    expect(h.repo.log()[0]!.sha).toBe(head);
    expect(h.repo.git("branch", "--list", "tenancy/*")).toBe("");
    expect(h.repo.git("status", "--porcelain")).toBe("");
  });

  it("refuses to write over uncommitted edits in tenants/ and says what to do", async () => {
    writeFileSync(join(h.repo.dir, "tenants", "freebie-one.yaml"), `${h.repo.show("main", "tenants/freebie-one.yaml")}# hand edit\n`);
    try {
      const res = await h.api("POST", "/api/tenants", { id: "dirty-co", displayName: "D", tier: "free", region: "us-east-1", environments: { prod: {} } });
      expect(res.status).toBe(503);
      expect((res.json.error as { message: string }).message).toMatch(/uncommitted changes in tenants\/ or stacks\/.*commit or discard them/);
    } finally {
      h.repo.git("checkout", "--", "tenants/freebie-one.yaml");
    }
  });

  it("repairs a crash between commit and database: the commit's runs are queued, a half-written change is undone", async () => {
    const pool = h.cp.db.pool;
    // 1: committed in git, still `planned` in the database (the process died in between).
    const committedId = randomUUID();
    await pool.query(
      "INSERT INTO changes (id, tenant_id, summary, source, route, state, paths, stacks) VALUES ($1, 'freebie-one', 'crash test', 'workflow', 'main', 'planned', $2, $3)",
      [committedId, ["tenants/freebie-one.yaml"], ["shared-prod-use1-01"]],
    );
    writeFileSync(join(h.repo.dir, "tenants", "freebie-one.yaml"), h.repo.show("main", "tenants/freebie-one.yaml")!.replace("displayName: Freebie One", "displayName: Freebie One Ltd"));
    h.repo.git("commit", "-q", "-am", `tenants: crash test\n\nTenancy-Change: ${committedId}\n`);
    // 2: written to the working copy, never committed.
    const lostId = randomUUID();
    await pool.query(
      "INSERT INTO changes (id, tenant_id, summary, source, cause_ids, route, state, paths, stacks) VALUES ($1, 'freebie-two', 'lost', 'workflow', '{wf-crash-test}', 'main', 'planned', $2, $3)",
      [lostId, ["tenants/freebie-two.yaml", "tenants/brand-new.yaml"], ["shared-prod-use1-01"]],
    );
    writeFileSync(join(h.repo.dir, "tenants", "freebie-two.yaml"), "id: half-written\n");
    writeFileSync(join(h.repo.dir, "tenants", "brand-new.yaml"), "id: brand-new\n");
    // Killed after `git add` and before the commit: both are staged (the new file as `A`).
    h.repo.git("add", "--", "tenants/freebie-two.yaml", "tenants/brand-new.yaml");
    expect(h.repo.git("status", "--porcelain").trim().split("\n").sort()).toEqual(["A  tenants/brand-new.yaml", "M  tenants/freebie-two.yaml"]);
    const freebieTwo = h.repo.show("main", "tenants/freebie-two.yaml");
    logLines.length = 0;

    await h.cp.writer.change(() => undefined);

    const states = (await pool.query("SELECT id, state, commit_sha FROM changes WHERE id = ANY($1)", [[committedId, lostId]])).rows;
    expect(states.find((r) => r.id === committedId)).toMatchObject({ state: "committed", commit_sha: h.repo.log()[0]!.sha });
    expect(states.find((r) => r.id === lostId)).toMatchObject({ state: "failed" });
    expect(await count(h, "SELECT 1 FROM runs WHERE $1 = ANY(change_ids) AND stack = 'shared-prod-use1-01'", [committedId])).toBe(1);
    // Index and working tree are back at the last commit: no `AD`, no staged half-written file.
    expect(h.repo.git("status", "--porcelain")).toBe("");
    expect(h.repo.git("diff", "--cached", "--name-only")).toBe("");
    expect(readFileSync(join(h.repo.dir, "tenants", "freebie-two.yaml"), "utf8")).toBe(freebieTwo);
    expect(existsSync(join(h.repo.dir, "tenants", "brand-new.yaml"))).toBe(false);
    const discarded = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.changeId === lostId);
    expect(discarded).toHaveLength(1);
    expect(discarded[0]).toMatchObject({
      level: 40,
      discarded: ["A  tenants/brand-new.yaml", "M  tenants/freebie-two.yaml"],
      source: "workflow",
      causes: ["wf-crash-test"],
      msg: `discarded the change "lost" interrupted before its commit (index and working tree back at ${h.repo.log()[0]!.sha.slice(0, 12)}); redone when workflow wf-crash-test retries its step`,
    });
    // The next change commits normally on that clean tree.
    const { results } = await h.cp.writer.change((d) => {
      d.stage({ tenantId: "freebie-two", summary: "after recovery", files: { "tenants/freebie-two.yaml": freebieTwo!.replace("displayName: Freebie Two", "displayName: Freebie Two Ltd") }, cause: { source: "api", ids: ["req-1"] } });
    });
    expect(results.map((r) => r.state)).toEqual(["committed"]);
    expect(h.repo.git("status", "--porcelain")).toBe("");
  });
});

interface Captured {
  method: string;
  url: string;
  auth: string | undefined;
  body: Record<string, unknown>;
}

/** A stand-in for GitHub's REST API (pulls endpoint), recording what the control plane sent. */
async function fakeGitHub(): Promise<{ server: Server; url: string; requests: Captured[] }> {
  const requests: Captured[] = [];
  const open = new Map<string, number>();
  const read = (req: IncomingMessage) => new Promise<string>((r) => {
    let b = "";
    req.on("data", (c: Buffer) => (b += c.toString()));
    req.on("end", () => r(b));
  });
  const server = createServer((req, res) => void (async () => {
    const text = await read(req);
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
    res.setHeader("content-type", "application/json");
    if (req.method === "POST" && req.url === "/repos/example/fleet/pulls") {
      const head = String(body.head);
      if (open.has(head)) {
        res.statusCode = 422;
        return res.end(JSON.stringify({ message: "Validation Failed", errors: [{ message: `A pull request already exists for example:${head}.` }] }));
      }
      open.set(head, open.size + 41);
      res.statusCode = 201;
      return res.end(JSON.stringify({ number: open.get(head), html_url: `https://github.example/example/fleet/pull/${open.get(head)}` }));
    }
    if (req.method === "GET" && req.url?.startsWith("/repos/example/fleet/pulls?")) {
      const head = new URL(req.url, "http://x").searchParams.get("head")!.split(":")[1]!;
      return res.end(JSON.stringify(open.has(head) ? [{ number: open.get(head), html_url: `https://github.example/example/fleet/pull/${open.get(head)}` }] : []));
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ message: "Not Found" }));
  })());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function withBareRemote(): { repo: ReturnType<typeof makeFixtureRepo>; bare: string } {
  const repo = makeFixtureRepo();
  const bare = mkdtempSync(join(tmpdir(), "tenancy-remote-"));
  execFileSync("git", ["init", "--quiet", "--bare", bare]);
  repo.git("remote", "add", "origin", bare);
  repo.git("push", "--quiet", "origin", "main");
  return { repo, bare };
}
const remoteRef = (bare: string, ref: string) => {
  try {
    return execFileSync("git", ["rev-parse", ref], { cwd: bare, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] }).trim();
  } catch {
    return undefined;
  }
};

describe("dedicated changes go to a branch and a pull request", () => {
  it("opens a PR through the GitHub API for a dedicated tenant, updates the same branch on the next change, and runs nothing", async () => {
    const gh = await fakeGitHub();
    const { repo, bare } = withBareRemote();
    const cidr = allocateDedicatedCidrs(loadFleet({ projectDir: repo.dir }).fleet!, 1)[0]!;
    const h = await startHarness({ pg, repo, config: { github: { token: "ghp_test_token", repo: "example/fleet", apiUrl: gh.url } } });
    try {
      const mainBefore = repo.log()[0]!.sha;
      const sub = { id: "sub_dedi", price: "price_dedicated_annual", metadata: { tenant_id: "dedi-co", tenant_name: "Dedi Co" } };
      await h.post(subscriptionEvent("evt_dedi_1", "customer.subscription.created", now() - 30, { ...sub, status: "active" }));
      const r = await result(h, "evt_dedi_1");
      expect(r).toMatchObject({ outcome: "proposed", branch: "tenancy/dedi-co", pullRequest: "https://github.example/example/fleet/pull/41" });
      expect(repo.log()[0]!.sha).toBe(mainBefore);
      expect(remoteRef(bare, "refs/heads/main")).toBe(mainBefore);
      const branchHead = remoteRef(bare, "refs/heads/tenancy/dedi-co")!;
      expect(branchHead).toBe(repo.git("rev-parse", "tenancy/dedi-co").trim());
      const tenant = repo.show("tenancy/dedi-co", "tenants/dedi-co.yaml")!;
      expect(tenant).toContain("tier: dedicated");
      expect(tenant).toContain(`cidr: ${cidr}`);
      expect(repo.show("tenancy/dedi-co", "stacks/Pulumi.dedicated-dedi-co-prod.yaml")).toContain("aws:region: us-east-1");
      expect(repo.log("tenancy/dedi-co")[0]!.body).toContain("Stripe-Event: evt_dedi_1");
      const pr = gh.requests.find((q) => q.method === "POST")!;
      expect(pr.auth).toBe("Bearer ghp_test_token");
      expect(pr.body).toMatchObject({ head: "tenancy/dedi-co", base: "main", title: expect.stringMatching(/^tenants: create dedi-co \(dedicated, dedicated \(dedicated-dedi-co-prod\)\)/) });
      expect(await count(h, "SELECT 1 FROM runs")).toBe(0);

      // A later change of the same subscription lands on the same branch and PR.
      await h.post(subscriptionEvent("evt_dedi_2", "customer.subscription.updated", now() - 20, { ...sub, status: "active", price: "price_enterprise" }));
      const r2 = await result(h, "evt_dedi_2");
      expect(r2).toMatchObject({ outcome: "proposed", branch: "tenancy/dedi-co", pullRequest: "https://github.example/example/fleet/pull/41" });
      const log = repo.log("tenancy/dedi-co");
      expect(log[1]!.sha).toBe(branchHead);
      expect(repo.show("tenancy/dedi-co", "tenants/dedi-co.yaml")).toContain("tier: enterprise");
      expect(repo.show("tenancy/dedi-co", "tenants/dedi-co.yaml")).toContain("deployment: dedicated");
      expect(remoteRef(bare, "refs/heads/tenancy/dedi-co")).toBe(log[0]!.sha);
      expect(await count(h, "SELECT 1 FROM runs")).toBe(0);

      // A person merges the PR (fast-forward on the remote); the next change starts a fresh branch from main.
      repo.git("push", "--quiet", "origin", "tenancy/dedi-co:main");
      await h.post(subscriptionEvent("evt_dedi_3", "customer.subscription.updated", now() - 10, { ...sub, status: "active", price: "price_dedicated_annual" }));
      const r3 = await result(h, "evt_dedi_3");
      expect(r3).toMatchObject({ outcome: "proposed", branch: "tenancy/dedi-co" });
      expect(repo.log()[0]!.sha).toBe(log[0]!.sha);
      expect(repo.git("rev-parse", "tenancy/dedi-co^").trim()).toBe(log[0]!.sha);
      expect(repo.show("tenancy/dedi-co", "tenants/dedi-co.yaml")).toContain("tier: dedicated");
    } finally {
      await h.close();
      gh.server.close();
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it("without a token pushes the branch and says so; without a remote keeps it local and says so; pooled commits are pushed", async () => {
    const { repo, bare } = withBareRemote();
    const h = await startHarness({ pg, repo });
    try {
      const res = await h.api("POST", "/api/tenants", { id: "branch-co", displayName: "Branch", tier: "dedicated", region: "eu-west-1", environments: { prod: {} } });
      expect(res.status).toBe(202);
      const change = res.json.change as { state: string; pushed: boolean; note: string; branch: string };
      expect(change).toMatchObject({ state: "proposed", pushed: true, branch: "tenancy/branch-co" });
      expect(change.note).toMatch(/pushed to origin; no GITHUB_TOKEN\/TENANCY_GITHUB_REPO configured, so no pull request was opened/);
      expect(remoteRef(bare, "refs/heads/tenancy/branch-co")).toBe(repo.git("rev-parse", "tenancy/branch-co").trim());
      const again = await h.api("POST", "/api/tenants", { id: "branch-co", displayName: "Branch", tier: "dedicated", region: "eu-west-1", environments: { prod: {} } });
      expect(again.status).toBe(409);
      expect((again.json.error as { message: string }).message).toBe("tenant branch-co is already proposed on branch tenancy/branch-co; merge or close that pull request first");

      const pooled = await h.api("POST", "/api/tenants", { id: "pushed-co", displayName: "Pushed", tier: "free", region: "eu-west-1", environments: { prod: {} } });
      expect(pooled.status).toBe(201);
      expect(pooled.json.change).toMatchObject({ state: "committed", pushed: true });
      expect(remoteRef(bare, "refs/heads/main")).toBe(repo.log()[0]!.sha);

      repo.git("remote", "remove", "origin");
      const local = await h.api("POST", "/api/tenants", { id: "local-co", displayName: "Local", tier: "dedicated", region: "us-east-1", environments: { prod: {} } });
      expect(local.status).toBe(202);
      expect((local.json.change as { note: string; pushed: boolean }).pushed).toBe(false);
      expect((local.json.change as { note: string }).note).toMatch(/committed in .* only: there is no remote "origin" to push it to/);
    } finally {
      await h.close();
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it("with no remote configured (the default) never pushes, even when the working copy has an origin", async () => {
    const { repo, bare } = withBareRemote();
    const before = remoteRef(bare, "refs/heads/main");
    const h = await startHarness({ pg, repo, config: { git: { author: { name: "Control Plane Test", email: "control-plane@test.invalid" } } } });
    try {
      const pooled = await h.api("POST", "/api/tenants", { id: "quiet-co", displayName: "Quiet", tier: "free", region: "eu-west-1", environments: { prod: {} } });
      expect(pooled.status).toBe(201);
      expect(pooled.json.change).toMatchObject({ state: "committed", pushed: false });
      expect(remoteRef(bare, "refs/heads/main")).toBe(before);
      const dedicated = await h.api("POST", "/api/tenants", { id: "quiet-ded", displayName: "Quiet", tier: "dedicated", region: "us-east-1", environments: { prod: {} } });
      expect(dedicated.status).toBe(202);
      expect(dedicated.json.change).toMatchObject({ pushed: false });
      expect((dedicated.json.change as { note: string }).note).toMatch(/committed in .* only: no remote is configured for pushes \(TENANCY_GIT_REMOTE\); push it and open a pull request$/);
      expect(remoteRef(bare, "refs/heads/tenancy/quiet-ded")).toBeUndefined();
    } finally {
      await h.close();
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
