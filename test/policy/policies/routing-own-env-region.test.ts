/**
 * routing-own-env-region on the real program's renders (test/policy/support/rendered.ts): every
 * example stack and every step of an upgrade pass (the cell forwards the tenant after cutover);
 * each failing case changes one share the way a wrong edit would, with the exact violations.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../../infra/model/fleet.ts";
import type { RenderedStack } from "../../../plan/types.ts";
import { upgradingStartupAlpha } from "../../infra/support.ts";
import { documentOf, edited, editedDocument, fleetOf, policyViolations, renderAll, SSM } from "../support/rendered.ts";
import { violation } from "../fixtures.ts";

const P = "routing-own-env-region";
const CELL = "shared-prod-use1-01";
const DED = "dedicated-acme-prod";
const PAGE = "/tenancy/prod/routing/us-east-1/cells/use1-01/00";
const INGRESS = "ingress.shared-prod-use1-01.tenancy.example.com";
const fleet = fleetOf();
let renders: Map<string, RenderedStack>;

beforeAll(async () => {
  renders = await renderAll(fleet, fleet.stacks.keys());
}, 120_000);

const stack = (name: string) => renders.get(name)!;
const urnOf = (s: RenderedStack, name: string) => s.resources.find((r) => r.type === SSM && r.name === name)!.urn;
const check = (s: RenderedStack) => policyViolations(fleet, s, P);
type Share = { routes: Record<string, string>; forwards: Record<string, string> } & Record<string, unknown>;
const share = (fn: (s: Share) => void) => (d: Record<string, unknown>) => fn(d as Share);

describe(P, () => {
  it("passes every stack of the example fleet", async () => {
    for (const s of renders.values()) expect(await check(s), s.name).toEqual([]);
    expect(documentOf(stack(CELL), "routing-00")).toEqual({
      schemaVersion: 1, env: "prod", region: "us-east-1", source: CELL, kind: "cell",
      routes: { "freebie-one": INGRESS, "startup-alpha": INGRESS }, forwards: {},
    });
  });

  it("reports a cell routing a tenant of another cell, and a tenant it serves left unrouted", async () => {
    const cell = stack(CELL);
    const u = urnOf(cell, "routing-00");
    expect(await check(editedDocument(cell, "routing-00", share((s) => (s.routes["company-beta"] = INGRESS))))).toEqual([
      violation(P, u, `routing share "${PAGE}" routes tenant "company-beta", whose runtime config this stack does not publish: a cell routes only the tenants it serves`),
    ]);
    expect(await check(editedDocument(cell, "routing-00", share((s) => delete s.routes["freebie-one"])))).toEqual([
      violation(P, u, 'tenant "freebie-one" is served by this stack (its runtime config is here) but no routing share of the stack routes it'),
    ]);
  });

  it("reports a share naming another region or env than its stack's", async () => {
    const cell = stack(CELL);
    const u = urnOf(cell, "routing-00");
    expect(await check(editedDocument(cell, "routing-00", (d) => (d.region = "eu-west-1")))).toEqual([
      violation(P, u, `routing share "${PAGE}": region is "eu-west-1", expected "us-east-1"`),
    ]);
    const moved = "/tenancy/prod/routing/eu-west-1/cells/use1-01/00";
    expect(await check(edited(cell, SSM, "routing-00", (p) => (p.name = moved)))).toEqual([
      violation(P, u, `routing share "${moved}" is for region eu-west-1, stack ${CELL} is in us-east-1`),
      violation(P, u, `routing share "${moved}": region is "us-east-1", expected "eu-west-1"`),
    ]);
    const staging = "/tenancy/staging/routing/us-east-1/cells/use1-01/00";
    expect(await check(edited(cell, SSM, "routing-00", (p) => (p.name = staging)))).toEqual([
      violation(P, u, `routing share "${staging}" is for env staging, stack ${CELL} is in env prod`),
      violation(P, u, `routing share "${staging}": env is "prod", expected "staging"`),
    ]);
  });

  it("reports another stack's share, a wrong source or tag, and a key a share does not define", async () => {
    const cell = stack(CELL);
    const u = urnOf(cell, "routing-00");
    const other = "/tenancy/prod/routing/us-east-1/cells/use1-02/00";
    expect(await check(edited(cell, SSM, "routing-00", (p) => (p.name = other)))).toEqual([
      violation(P, u, `routing share "${other}" is cell use1-02's, written by ${CELL}; a share is written only by its own stack`),
    ]);
    expect(await check(editedDocument(cell, "routing-00", (d) => Object.assign(d, { source: "shared-prod-use1-02", tenants: ["acme"] })))).toEqual([
      violation(P, u, `routing share "${PAGE}" has key "tenants" a share does not define (ROUTING_KEYS in infra/model/routingDocument.ts)`),
      violation(P, u, `routing share "${PAGE}": source is "shared-prod-use1-02", expected "${CELL}"`),
    ]);
    expect(await check(edited(cell, SSM, "routing-00", (p) => ((p.tags as Record<string, string>).tenant = "freebie-one")))).toEqual([
      violation(P, u, `routing share "${PAGE}" is tagged tenant "freebie-one", expected "shared"`),
    ]);
  });

  it("reports forwards of a tenant the cell serves or does not hold", async () => {
    const cell = stack(CELL);
    const u = urnOf(cell, "routing-00");
    expect(await check(editedDocument(cell, "routing-00", share((s) => Object.assign(s.forwards, { "freebie-one": INGRESS, bigcorp: "bigcorp.dedicated.tenancy.example.com" }))))).toEqual([
      violation(P, u, `routing share "${PAGE}" forwards tenant "freebie-one", which this stack serves: it belongs in routes`),
      violation(P, u, `routing share "${PAGE}" forwards tenant "bigcorp", which this stack does not hold`),
    ]);
  });

  it("reports a dedicated share routing another tenant, or its tenant to another tenant's zone", async () => {
    const ded = stack(DED);
    const u = urnOf(ded, "routing-00");
    const name = "/tenancy/prod/routing/us-east-1/dedicated/acme";
    expect(await check(editedDocument(ded, "routing-00", share((s) => (s.routes.megacorp = "megacorp.dedicated.tenancy.example.com"))))).toEqual([
      violation(P, u, `routing share "${name}": routes is {"acme":"acme.dedicated.tenancy.example.com","megacorp":"megacorp.dedicated.tenancy.example.com"}, expected {"acme":"acme.dedicated.tenancy.example.com"} (a dedicated stack routes only its tenant, to its zone)`),
    ]);
    expect(await check(editedDocument(ded, "routing-00", share((s) => (s.routes.acme = "megacorp.dedicated.tenancy.example.com"))))).toEqual([
      violation(P, u, `routing share "${name}": routes.acme is "megacorp.dedicated.tenancy.example.com", the zone of tenant "megacorp"`),
      violation(P, u, `routing share "${name}": routes is {"acme":"megacorp.dedicated.tenancy.example.com"}, expected {"acme":"acme.dedicated.tenancy.example.com"} (a dedicated stack routes only its tenant, to its zone)`),
    ]);
  });

  it("reports a share in a platform stack, and a parameter under the routing path of neither form", async () => {
    const cell = stack(CELL);
    const platform = structuredClone(stack("platform-us-east-1"));
    const like = cell.resources.find((r) => r.type === SSM && r.name === "routing-00")!;
    const urn = like.urn.replace(CELL, platform.name);
    platform.resources.push({ ...structuredClone(like), urn });
    expect(await check(platform)).toEqual([
      violation(P, urn, `routing share "${PAGE}" in platform stack platform-us-east-1; only cell and dedicated stacks write shares`),
    ]);
    const odd = "/tenancy/prod/routing/us-east-1/all";
    expect(await check(edited(cell, SSM, "routing-00", (p) => (p.name = odd)))).toEqual([
      violation(P, urnOf(cell, "routing-00"), `parameter "${odd}" under the routing path is neither a cell page (.../routing/<region>/cells/<cell>/<nn>) nor a dedicated share (.../routing/<region>/dedicated/<tenant>)`),
      violation(P, urnOf(cell, "routing-00"), 'tenant "freebie-one" is served by this stack (its runtime config is here) but no routing share of the stack routes it'),
      violation(P, urnOf(cell, "routing-00"), 'tenant "startup-alpha" is served by this stack (its runtime config is here) but no routing share of the stack routes it'),
    ]);
  });
});

describe(`${P} through an upgrade (startup-alpha, prod, from cell use1-01)`, () => {
  function upgraded(phase?: string): Fleet {
    return upgradingStartupAlpha(phase);
  }

  it("each phase passes; after cutover the cell forwards the tenant it still renders (a control for the forwards rule)", async () => {
    const forwards: Record<string, unknown> = {};
    for (const phase of ["provisioning", "copying", "cutover", "cleanup", undefined]) {
      const f = upgraded(phase);
      const rs = await renderAll(f, [CELL, "dedicated-startup-alpha-prod"]);
      for (const s of rs.values()) expect(await policyViolations(f, s, P), `${phase} ${s.name}`).toEqual([]);
      forwards[String(phase)] = documentOf(rs.get(CELL)!, "routing-00").forwards;
    }
    const ded = { "startup-alpha": "startup-alpha.dedicated.tenancy.example.com" };
    expect(forwards).toEqual({ provisioning: {}, copying: {}, cutover: ded, cleanup: ded, undefined: {} });
  }, 120_000);
});
