/**
 * What the two cell stacks render of a tenant moving between them (infra/components/pooledTenant.ts,
 * infra/model/cellMove.ts), per phase of the move, on the real renders (mock runtime, nothing is
 * deployed): before the switch the source cell declares the identity and the DNS name and the
 * destination only the role (no LOGIN) and schema; from the switch on the reverse, with the source
 * keeping the role (no LOGIN) and the schema until cleanup. The identity URNs the destination
 * declares are the source's with the stack renamed (what `pulumi state move` produces), and both
 * roles take the connection document's password (environments.prod.movedAt).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { moveHandoverUrns } from "../../infra/model/cellMove.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { moveStartEdit } from "../../infra/model/fleetFiles/index.ts";
import { renameStackInUrn } from "../../infra/model/handover.ts";
import { mockRotatedPassword } from "../../plan/render/mockOutputs.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { editYaml, exampleFleet, plain, render, T, tempFleet } from "./support.ts";

const ID = "startup-alpha";
const SRC = "shared-prod-use1-01";
const DST = "shared-prod-use1-02";

function tenantResources(r: RenderedStack): { type: string; name: string; urn: string; retain: boolean; custom: boolean }[] {
  return r.resources
    .filter((x) => x.name.startsWith(`tenant-${ID}`))
    .map((x) => ({ type: x.type, name: x.name, urn: x.urn, retain: x.options.retainOnDelete, custom: x.custom }));
}

/** The types of the tenant's custom resources in a render, sorted. */
function customTypes(r: RenderedStack): string[] {
  return tenantResources(r).filter((x) => x.custom).map((x) => x.type).sort();
}

function login(r: RenderedStack): unknown {
  const role = r.resources.find((x) => x.type === T.pgRole && x.name === `tenant-${ID}-db-access`);
  return role ? plain(role).login : "absent";
}

async function movingRenders(phase: string): Promise<{ src: RenderedStack; dst: RenderedStack; fleet: Fleet }> {
  const base = exampleFleet();
  let dir = "";
  tempFleet((d) => {
    dir = d;
    const path = join(d, `tenants/${ID}.yaml`);
    const t = base.tenants.get(ID)!.tenant;
    writeFileSync(path, moveStartEdit(base, readFileSync(path, "utf8"), t, "prod", "use1-02", "0b5a4a4e-6a8e-4c31-9d1e-3f1f6a3c2b10", new Date("2026-12-01T10:00:00Z"))[`tenants/${ID}.yaml`]!);
    editYaml(d, `tenants/${ID}.yaml`, (doc) => void ((doc.move as Record<string, unknown>).phase = phase));
  });
  const fleet = requireFleet({ projectDir: dir });
  return { src: await render(fleet, SRC), dst: await render(fleet, DST), fleet };
}

describe("a tenant moving from use1-01 to use1-02 (prod)", () => {
  it("before the switch: the source declares everything (retained on delete), the destination only its role without LOGIN and its schema", async () => {
    const before = await render(exampleFleet(), SRC);
    for (const phase of ["provisioning", "copying"]) {
      const { src, dst } = await movingRenders(phase);
      expect(tenantResources(src).map((x) => x.urn).sort(), phase).toEqual(tenantResources(before).map((x) => x.urn).sort());
      expect(login(src), phase).toBe(true);
      const identity = tenantResources(src).filter((x) => x.custom && !x.type.startsWith("postgresql:") && x.type !== T.password);
      expect(identity.length).toBeGreaterThan(5);
      expect(identity.filter((x) => !x.retain).map((x) => x.urn), phase).toEqual([]);
      expect(customTypes(dst), phase).toEqual([T.pgGrant, T.pgRole, T.pgSchema, T.password].sort());
      expect(login(dst), phase).toBe(false);
    }
  });

  it("from the switch on: the destination declares the identity under the URNs the state move gives the source's; the source keeps role (no LOGIN) and schema", async () => {
    for (const phase of ["cutover", "cleanup"]) {
      const { src, dst, fleet } = await movingRenders(phase);
      expect(customTypes(src), phase).toEqual([T.pgGrant, T.pgRole, T.pgSchema, T.password].sort());
      expect(login(src), phase).toBe(false);
      expect(login(dst), phase).toBe(true);
      const dstUrns = new Set(tenantResources(dst).map((x) => x.urn));
      const moved = moveHandoverUrns(fleet.tenants.get(ID)!.tenant, "prod", "use1-01").map((u) => renameStackInUrn(u, DST));
      for (const u of moved) expect(dstUrns.has(u), u).toBe(true);
      const dns = dst.resources.find((x) => x.type === T.record && x.name === `tenant-${ID}-dns`)!;
      expect(plain(dns).records).toEqual(["ingress.shared-prod-use1-02.tenancy.example.com"]);
    }
  });

  it("both roles and the destination's document take the connection document's password (movedAt), so the role the destination creates has the one applications use", async () => {
    const { src, dst } = await movingRenders("cutover");
    const expected = mockRotatedPassword(`tenancy/prod/tenants/${ID}/database`);
    for (const r of [src, dst]) expect(plain(r.resources.find((x) => x.type === T.pgRole && x.name === `tenant-${ID}-db-access`)!).password).toBe(expected);
    const doc = dst.resources.find((x) => x.type === T.version && x.name === `tenant-${ID}-database`)!;
    expect(JSON.parse(String(plain(doc).secretString)).password).toBe(expected);
    // Negative control: staging did not move and keeps its stack's random password.
    const staging = await render(requireFleet({ projectDir: join(import.meta.dirname, "..", "..") }), "shared-staging-use1-01");
    expect(plain(staging.resources.find((x) => x.type === T.pgRole && x.name === `tenant-${ID}-db-access`)!).password).not.toBe(expected);
  });
});
