/**
 * The console's pure parts, without a browser: escaping of every value put into a page, the fleet
 * view built from the example fleet (opening cells marked), and the fleet map's search.
 */
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { html, layout } from "../../automation/console/html.ts";
import { fleetMap } from "../../automation/console/pages/fleet.ts";
import type { WorkflowJson } from "../../automation/console/api.ts";
import { costBlock, costSection, runtimeConfigSection } from "../../automation/console/pages/tenant.ts";
import { backupsSection, formatBytes, schemasSection } from "../../automation/console/pages/tenantStorage.ts";
import { fleetView, type FleetView } from "../../automation/http/routes/fleet.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";

const PROJECT = resolve(import.meta.dirname, "../..");

describe("console html", () => {
  it("escapes values, keeps nested templates, drops null/undefined/false", () => {
    const evil = `"><script>alert('x')</script>&`;
    expect(html`<p title="${evil}">${evil}</p>`.text).toBe(`<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>`);
    expect(html`<ul>${["a<", "b"].map((x) => html`<li>${x}</li>`)}</ul>`.text).toBe("<ul><li>a&lt;</li><li>b</li></ul>");
    expect(html`${null}${undefined}${false}${0}`.text).toBe("0");
  });
});

describe("fleet view and map", () => {
  const fleet = requireFleet({ projectDir: PROJECT });

  it("marks a cell opened at the reserve as opening, and only that one", () => {
    const opened: Fleet = { ...fleet, cells: new Map([...fleet.cells].map(([k, c]) => [k, k === "shared-prod-use1-02" ? { ...c, config: { ...c.config, opening: true } } : c])) };
    const cells = (f: Fleet) => fleetView(f, "main").regions.flatMap((r) => r.envs.flatMap((e) => e.cells.map((c) => [c.stack, c.opening])));
    expect(cells(fleet).filter(([, o]) => o)).toEqual([]);
    expect(cells(opened).filter(([, o]) => o)).toEqual([["shared-prod-use1-02", true]]);
    expect(fleetMap(fleetView(opened, "main"), "").text).toMatch(/<h4 id="cell-shared-prod-use1-02">Cell use1-02 <span class="sub">shared-prod-use1-02<\/span> <span class="tag life">opening<\/span><\/h4>/);
  });

  it("search keeps the matching tenants (by id or name) and the cells holding them", () => {
    const view = fleetView(fleet, "main");
    const ids = (q: string) => [...fleetMap(view, q).text.matchAll(/<a href="tenants\/([^"]+)"/g)].map((m) => m[1]);
    expect(ids("gamma")).toEqual(["gamma-labs", "gamma-labs"]);
    expect(ids("acme corp")).toEqual(["acme"]);
    expect(ids("nobody-at-all")).toEqual([]);
    expect(fleetMap(view, "gamma").text).toContain("2 of 12 tenant placements match “gamma”");
    expect(ids("").length).toBe(12);
  });

  it("groups a cell's residents by tier, writes a lifecycle other than active beside the tenant, and its name when it is not its id", () => {
    const view: FleetView = {
      branch: "main",
      regions: [
        {
          region: "us-east-1",
          envs: [
            {
              env: "prod",
              cells: [
                {
                  id: "use1-01",
                  stack: "shared-prod-use1-01",
                  capacity: 10,
                  opening: false,
                  residents: [
                    { id: "a", displayName: "A & Co", tier: "free", lifecycle: "active", migrating: false },
                    { id: "b", displayName: "b", tier: "enterprise", lifecycle: "suspended", migrating: false },
                    { id: "c", displayName: "C", tier: "free", lifecycle: "active", migrating: true },
                  ],
                },
              ],
              dedicated: [{ id: "d", displayName: "D", tier: "dedicated", lifecycle: "offboarding", migrating: false, stack: "dedicated-d-prod" }],
            },
          ],
        },
      ],
    };
    const out = fleetMap(view, "").text;
    expect(out).toContain(
      '<h5 class="g">enterprise <span class="sub">1</span></h5><ul class="r t-enterprise" aria-label="Residents of shared-prod-use1-01: enterprise"><li class="suspended"><a href="tenants/b">b</a> <b>suspended</b></li></ul>' +
        '<h5 class="g">free <span class="sub">2</span></h5><ul class="r t-free" aria-label="Residents of shared-prod-use1-01: free"><li><a href="tenants/a">a</a> A &amp; Co</li><li class="migrating"><a href="tenants/c">c</a> C <b>migrating</b></li></ul>',
    );
    expect(out).toContain('<ul class="r t-dedicated" aria-label="Dedicated stacks in us-east-1 prod: dedicated"><li class="offboarding"><a href="tenants/d">d</a> D <b>offboarding</b></li></ul>');
    expect(out).toContain("3 of 10 places used");
    expect(out).toContain("4 tenant placements on main");
  });
});

describe("tenant page: cost per month", () => {
  const text = (h: { text: string }) => h.text.replace(/<\/?(td|th|tr|caption)[^>]*>/g, " ").replace(/<[^>]+>/g, "").replace(/\s+/g, " ").trim();

  it("shows the total, each stack's own part and cell share, and where the prices come from", () => {
    const out = text(
      costSection({
        status: 200,
        json: {
          tenant: "gamma-labs",
          pricesAsOf: "2026-11-22",
          assumptions: ["on-demand list prices"],
          stacks: [
            { stack: "shared-prod-use1-02", ownUsd: 0.4, shareUsd: 88.8, residents: 2 },
            { stack: "dedicated-x-prod", ownUsd: 1234.5, shareUsd: 0, residents: 1 },
          ],
          monthlyUsd: 1323.7,
          unpriced: [{ stack: "shared-prod-use1-02", urn: "u", type: "aws:rds/instance:Instance", name: "db", reason: "no price for db.x9" }],
          unverified: true,
        },
      }),
    );
    expect(out).toContain("$1,323.70 a month * (understated: some resources have no price)");
    expect(out).toContain("shared-prod-use1-02 $0.40 $88.80 (1 of 2 residents) $89.20");
    expect(out).toContain("dedicated-x-prod $1,234.50 none (the whole stack is its own) $1,234.50");
    expect(out).toContain("Not counted (no price in the table): shared-prod-use1-02 aws:rds/instance:Instance db: no price for db.x9");
    expect(out).toContain("on-demand list prices taken on 2026-11-22 (the price table plan/cost/prices.ts");
  });

  it("says the cost is being computed (202) and shows the API's refusal otherwise", () => {
    expect(text(costSection({ status: 202, json: { state: "computing", stacks: ["shared-prod-use1-01", "shared-staging-use1-01"] } }))).toBe(
      "Being computed: shared-prod-use1-01, shared-staging-use1-01 are rendered offline and priced. The figure appears here by itself when it is ready (with scripts off, the page reloads itself every 5 s).",
    );
    expect(text(costSection({ status: 503, json: { error: { message: "pricing x failed: boom; ask again to retry" } } }))).toBe("pricing x failed: boom; ask again to retry");
  });


  it("marks the section busy with the URL cost.js asks again only while computing, and refreshes the page without scripts only then", () => {
    const computing = costBlock("a b", { status: 202, json: { state: "computing", stacks: ["x"] } }).text;
    expect(computing).toMatch(/^<section aria-labelledby="cost" id="cost-section" aria-live="polite" aria-busy="true" data-cost-url="\/console\/tenants\/a%20b\/cost" data-cost-state="computing">/);
    const failed = costBlock("a", { status: 503, json: { error: { message: "boom" } } }).text;
    expect(failed).toMatch(/^<section aria-labelledby="cost" id="cost-section" aria-live="polite" data-cost-state="failed">/);
    expect(failed).not.toContain("data-cost-url");
    const page = layout({ title: "T", body: html`<p>x</p>`, scripts: ["cost.js"], refreshWithoutScripts: 5 });
    expect(page).toContain('<script type="module" src="/console/assets/cost.js"></script>\n<noscript><meta http-equiv="refresh" content="5"></noscript>\n</head>');
    expect(layout({ title: "T", body: html`<p>x</p>` })).not.toContain("refresh");
  });
});

describe("tenant page: runtime configuration", () => {
  it("shows each env's parameter name and its value indented, escaped, and a document that cannot be published with why", () => {
    const out = runtimeConfigSection([
      { env: "prod", parameter: "/tenancy/prod/tenants/a/config", value: '{"tenant":"a","url":"https://a.example.com/?x=<b>"}' },
      { env: "staging", error: "runtime config of a (staging) is 5000 bytes, over the 4096 of an SSM Standard parameter" },
    ]).text;
    expect(out).toContain('<h3>prod <code class="sub">/tenancy/prod/tenants/a/config</code></h3><pre class="spec" tabindex="0" data-env="prod" aria-label="runtime config of prod">{\n  &quot;tenant&quot;: &quot;a&quot;,\n  &quot;url&quot;: &quot;https://a.example.com/?x=&lt;b&gt;&quot;\n}</pre>');
    expect(out).toContain('<h3>staging</h3><p class="error">runtime config of a (staging) is 5000 bytes, over the 4096 of an SSM Standard parameter</p>');
  });
});

describe("tenant page: backups and database schemas", () => {
  /** An HTML fragment's text as a browser shows it: tags dropped, entities read, spaces folded. */
  const text = (h: { text: string }) =>
    h.text.replace(/<[^>]+>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&").replace(/\s+/g, " ").trim();
  const cells = (h: { text: string }) => [...h.text.matchAll(/<tr data-[a-z-]+="[^"]*">(.*?)<\/tr>/g)].map((m) => [...m[1]!.matchAll(/<td>(.*?)<\/td>/g)].map((c) => text({ text: c[1]! })));

  it("writes sizes in binary units with the exact count", () => {
    expect([0, 1, 1023, 1024, 1536, 5 * 1024 * 1024 + 1, 3 * 1024 ** 4].map(formatBytes)).toEqual([
      "0 bytes",
      "1 byte",
      "1,023 bytes",
      "1.0 KiB (1,024 bytes)",
      "1.5 KiB (1,536 bytes)",
      "5.0 MiB (5,242,881 bytes)",
      "3.0 TiB (3,298,534,883,328 bytes)",
    ]);
  });

  it("lists every recorded backup with its kind, env, time, location, size or that none was recorded, and the workflow that took it", () => {
    const wf = { id: "11111111-2222-4333-8444-555555555555", kind: "offboard" } as WorkflowJson;
    const out = backupsSection(
      [
        { id: "2", workflowId: wf.id, env: "prod", kind: "rds-snapshot", location: "rds:us-east-1:snapshot:x<y>", bytes: null, sha256: null, recordedAt: "2026-12-01T10:05:00.000Z" },
        { id: "1", workflowId: "99999999-2222-4333-8444-555555555555", env: "prod", kind: "schema-dump", location: "s3://b/backups/tenants/a/1/prod-tenant_a.sql.gz", bytes: 2048, sha256: "ab", recordedAt: "2026-12-01T10:00:00.000Z" },
      ],
      [wf],
    );
    expect(cells(out)).toEqual([
      ["RDS snapshot", "prod", "2026-12-01 10:05:00 UTC", "rds:us-east-1:snapshot:x<y>", "not recorded", "offboard 11111111"],
      // A workflow older than the page's list: named by its id alone.
      ["schema dump", "prod", "2026-12-01 10:00:00 UTC", "s3://b/backups/tenants/a/1/prod-tenant_a.sql.gz", "2.0 KiB (2,048 bytes)", "workflow 99999999"],
    ]);
    expect(out.text).toContain("x&lt;y&gt;");
    expect(out.text).toContain(`<a href="/console/workflows/${wf.id}">offboard 11111111</a>`);
    expect(text(backupsSection([], []))).toContain("None recorded.");
    expect(text(backupsSection(undefined, []))).toContain("The lifecycle worker is off in this control plane.");
  });

  const status = (schemas: unknown[]) => ({ status: 200, json: { templateVersion: 3, head: 4, schemas } });
  const migration = (state: string, over: Record<string, unknown> = {}) => ({ id: "abcdef12-0000-4000-8000-000000000000", action: "migrate", targetVersion: 4, state, haltReason: null, ...over });

  it("shows each schema's version against the template version, a migration running, halted or failed for it, and why a version could not be read", () => {
    const out = schemasSection({
      status: status([
        { stack: "shared-prod-use1-01", tenant: "a-co", version: 3, outdated: false, lastError: null },
        { stack: "shared-staging-use1-01", tenant: "a-co", version: 2, outdated: true, lastError: "relation x exists" },
        { stack: "dedicated-a-co-prod", tenant: "a-co", version: null, outdated: false, lastError: null, error: "no database for stack dedicated-a-co-prod" },
        { stack: "shared-dev-use1-01", tenant: "a-co", version: 3, outdated: false, lastError: null },
      ]),
      active: [
        {
          migration: migration("running"),
          schemas: [
            { stack: "shared-prod-use1-01", tenant: "a-co", state: "running", fromVersion: 3, toVersion: null, error: null },
            { stack: "dedicated-a-co-prod", tenant: "a-co", state: "failed", fromVersion: null, toVersion: null, error: "connection refused" },
          ],
        },
        { migration: migration("halted", { id: "00000000-aaaa-4000-8000-000000000000", action: "rollback", targetVersion: 2, haltReason: "wave 1: budget spent" }), schemas: [{ stack: "shared-dev-use1-01", tenant: "a-co", state: "pending", fromVersion: null, toVersion: null, error: null }] },
      ],
    });
    expect(cells(out)).toEqual([
      ["shared-prod-use1-01", "tenant_a_co", "3 current (template version 3)", "migrate to 4 running abcdef12: this schema running"],
      // No active migration holds it: its last fleet migration's failure.
      ["shared-staging-use1-01", "tenant_a_co", "2 behind the template version 3", "last migration failed: relation x exists"],
      ["dedicated-a-co-prod", "tenant_a_co", "not read: no database for stack dedicated-a-co-prod", "migrate to 4 running abcdef12: this schema failed connection refused"],
      ["shared-dev-use1-01", "tenant_a_co", "3 current (template version 3)", "rollback to 2 halted 00000000: this schema pending (halted: wave 1: budget spent)"],
    ]);
  });

  it("says none is running for a schema no migration holds, and shows the API's refusal (schema migrations off) in place of the table", () => {
    const out = schemasSection({ status: status([{ stack: "shared-prod-use1-01", tenant: "a", version: 1, outdated: true, lastError: null }]), active: [] });
    expect(cells(out)).toEqual([["shared-prod-use1-01", "tenant_a", "1 behind the template version 3", "none running"]]);
    const off = schemasSection({ status: { status: 503, json: { error: { message: "schema migrations are off in this control plane" } } }, active: [] });
    expect(off.text).toContain('<p class="error">schema migrations are off in this control plane</p>');
    expect(off.text).not.toContain("<table");
  });
});
