/**
 * The ownership hand-over of an upgrading tenant (infra/model/handover.ts), proven on the real
 * renders of both stacks through every migration phase, applied to a model of the engine and of
 * AWS's name uniqueness (test/support/engineSim.ts; a test double, nothing is deployed):
 * no update ever fails on "already exists", nothing of the tenant's identity is deleted or
 * replaced, and at the end the dedicated stack manages the very objects the cell created.
 * Negative controls show the model catches a missing state move and missing aliases.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { upgradeProvisionEdit } from "../../infra/model/fleetFiles/index.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { handbackKeyUrns, identityHandoverUrns, keyHandoverUrns, renameStackInUrn } from "../../infra/model/handover.ts";
import { cellStackName, dedicatedStackName, tenantRoleName } from "../../infra/model/naming.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { AlreadyExistsError, physicalName, SimCloud } from "../support/engineSim.ts";
import { editYaml, projectDir, render, tempFleet } from "./support.ts";

const ENV = "prod";

/** The storage alarm the cell declares while it serves the tenant (infra/model/storageAlarms.ts), as the engine double names it. */
const cellAlarm = (tenant: string) => `cloudwatch alarm tenancy/prod/tenants/${tenant}/object-storage/shared-prod-${tenant === "company-beta" ? "use1-02" : "use1-01"}`;

interface Timeline {
  dir: string;
  tenant: string;
  cell: string;
  cellStack: string;
  dedStack: string;
  fleet(): Fleet;
  setPhase(phase: "provisioning" | "copying" | "cutover" | "cleanup"): void;
  finish(): void;
}

/** A temporary copy of the example fleet where `tenant` (pooled in prod) is upgraded with the workflow's own edit. */
function upgrade(tenant: string): { before: Fleet; t: Timeline } {
  let dir = "";
  const before = tempFleet((d) => (dir = d));
  const loaded = before.tenants.get(tenant)!;
  const pooled = loaded.tenant;
  if (pooled.deployment !== "pooled") throw new Error(`${tenant} is not pooled`);
  const cell = pooled.placement[ENV]!;
  const t: Timeline = {
    dir,
    tenant,
    cell,
    cellStack: cellStackName(ENV, cell),
    dedStack: dedicatedStackName(tenant, ENV),
    fleet: () => requireFleet({ projectDir: dir }),
    setPhase: (phase) => editYaml(dir, `tenants/${tenant}.yaml`, (doc) => void ((doc.migration as Record<string, unknown>).phase = phase)),
    // What the workflow's cleanup.files writes: the block removed, movedAt in every env.
    finish: () =>
      editYaml(dir, `tenants/${tenant}.yaml`, (doc) => {
        const at = (doc.migration as { startedAt: string }).startedAt;
        delete doc.migration;
        for (const e of Object.values(doc.environments as Record<string, Record<string, unknown>>)) e.movedAt = at;
      }),
  };
  return {
    before,
    t: Object.assign(t, {
      provision() {
        const text = readFileSync(join(dir, `tenants/${tenant}.yaml`), "utf8");
        const edit = upgradeProvisionEdit(before, text, pooled, new Date("2026-11-01T00:00:00Z"));
        for (const [path, body] of Object.entries(edit.files)) writeFileSync(join(dir, path), body!);
      },
    }),
  };
}

function provision(t: Timeline): void {
  (t as Timeline & { provision(): void }).provision();
}

/** Physical names of the tenant's identity resources in a rendered stack (the hand-over set). */
function identityNames(r: RenderedStack, tenant: string): string[] {
  return r.resources
    .filter((x) => x.custom && x.urn.includes(`::tenant-${tenant}-`) && /-(role|key|database|secrets|access|config)(\/|$)/.test(x.name))
    .map((x) => physicalName(x))
    .filter((n): n is string => n !== undefined)
    .sort();
}

async function run(tenant: string) {
  const { before, t } = upgrade(tenant);
  const cloud = new SimCloud();

  // Pooled: the cell creates the tenant's identity.
  const cell0 = await render(before, t.cellStack);
  cloud.up(cell0);
  const identity = identityNames(cell0, tenant);
  const objects = new Map(identity.map((n) => [n, cloud.names.get(n)]));

  // An own key moves before the provisioning commit (the dedicated stack encrypts with it from the start).
  const keyUrns = keyHandoverUrns(before.tenants.get(tenant)!.tenant, ENV, t.cell);
  const keyMoved = keyUrns.length > 0 ? cloud.move(t.cellStack, t.dedStack, keyUrns) : [];

  // Provisioning: the cell keeps serving (only retain flags change); the dedicated stack is
  // created next to it without touching the tenant's other identity names.
  provision(t);
  const cell1 = await render(t.fleet(), t.cellStack);
  const provCell = cloud.up(cell1);
  const ded1 = await render(t.fleet(), t.dedStack);
  const provDed = cloud.up(ded1);

  // Copying changes neither program.
  t.setPhase("copying");
  expect((await render(t.fleet(), t.cellStack)).resources).toEqual(cell1.resources);

  // Cutover: the state moves first, then both stacks are updated.
  const urns = identityHandoverUrns(t.fleet().tenants.get(tenant)!.tenant, ENV, t.cell);
  const moved = cloud.move(t.cellStack, t.dedStack, urns);
  t.setPhase("cutover");
  const cutCell = cloud.up(await render(t.fleet(), t.cellStack));
  const ded3 = await render(t.fleet(), t.dedStack);
  const cutDed = cloud.up(ded3);

  // Cleanup phase, then the migration block removed: the cell forgets the tenant.
  t.setPhase("cleanup");
  const cleanCell = cloud.up(await render(t.fleet(), t.cellStack));
  t.finish();
  const doneCell = cloud.up(await render(t.fleet(), t.cellStack));
  const ded5 = await render(t.fleet(), t.dedStack);
  const doneDed = cloud.up(ded5);

  return { t, identity, objects, cloud, cell0, cell1, ded1, ded3, ded5, urns, moved, keyUrns, keyMoved, provCell, provDed, cutCell, cutDed, cleanCell, doneCell, doneDed };
}

describe.each([
  ["startup-alpha", "standard: secrets under the cell key, a new tenant key in the dedicated stack"],
  ["company-beta", "enterprise: its own key in the cell moves with the rest"],
])("upgrade hand-over of %s (%s)", (tenant) => {
  it("never collides, never deletes the tenant's identity, and ends with the same objects owned by the dedicated stack", async () => {
    const r = await run(tenant);
    const ownKey = tenant === "company-beta";
    expect(r.identity).toEqual(
      [
        `iam role policy ${tenantRoleName("tenancy", ENV, tenant)}/tenant-access`,
        `iam role ${tenantRoleName("tenancy", ENV, tenant)}`,
        ...(ownKey ? [`kms alias alias/tenancy/prod/tenants/${tenant}`] : []),
        `secret tenancy/prod/tenants/${tenant}/database`,
        `secret tenancy/prod/tenants/${tenant}/${ownKey ? "saml_signing_key" : "stripe_api_key"}`,
        `ssm parameter /tenancy/prod/tenants/${tenant}/config`,
      ].sort(),
    );

    // Provisioning: nothing of the cell deleted or created; the dedicated stack declares none of the identity names.
    expect(r.provCell).toMatchObject({ created: [], deleted: [], replaced: [], retained: [] });
    // The identity is marked retainOnDelete in the cell's state from then on (checked through its renders).
    for (const x of r.cell1.resources.filter((y) => y.custom && physicalName(y) !== undefined && r.identity.includes(physicalName(y)!))) {
      expect(x.options.retainOnDelete, x.urn).toBe(true);
    }
    expect(r.cell0.resources.filter((y) => y.urn.includes(`tenant-${tenant}`) && y.options.retainOnDelete && y.type !== "aws:kms/key:Key")).toEqual([]);
    // The dedicated stack manages a tenant key from its first update: the moved one (claimed by alias) or a new one.
    expect(identityNames(r.ded1, tenant)).toEqual([`kms alias alias/tenancy/prod/tenants/${tenant}`]);
    expect(r.provDed.deleted).toEqual([]);
    expect(r.keyUrns.map((u) => u.slice(u.lastIndexOf("::") + 2))).toEqual(ownKey ? [`tenant-${tenant}-key`] : []);
    expect(r.provDed.aliased.map((a) => a.from).sort()).toEqual(r.keyMoved.map((u) => renameStackInUrn(u, r.t.dedStack)).sort());
    expect(r.provDed.created.some((u) => u.endsWith("aws:kms/key:Key::tenant-" + tenant + "-key"))).toBe(!ownKey);

    // Cutover: the move took exactly the identity components and their children.
    expect(r.urns.map((u) => u.slice(u.lastIndexOf("::") + 2))).toEqual(["-role", "-database", "-secrets", "-access", "-config"].map((s) => `tenant-${tenant}${s}`));
    // The cell stops serving the tenant: it deletes only its storage alarm of the tenant (the
    // dedicated stack has its own since provisioning, under other names: infra/model/storageAlarms.ts).
    expect(r.cutCell).toMatchObject({ created: [], deleted: [cellAlarm(tenant)], retained: [], replaced: [] });
    expect(r.cutDed.deleted).toEqual([]);
    expect(r.cutDed.retained).toEqual([]);
    // Every moved resource is claimed by the dedicated program through its alias.
    expect(r.cutDed.aliased.map((a) => a.from).sort()).toEqual(r.moved.map((u) => renameStackInUrn(u, r.t.dedStack)).sort());
    // In place: only connection documents' versions are replaced (a new version holds the dedicated database).
    expect(r.cutDed.replaced.map((u) => u.split("::")[2]!.split("$").at(-1))).toEqual(["aws:secretsmanager/secretVersion:SecretVersion"]);
    expect(identityNames(r.ded3, tenant)).toEqual([...new Set([...r.identity, `kms alias alias/tenancy/prod/tenants/${tenant}`])].sort());

    // Leaving the cell deletes only the tenant's database role, schema, grants and DNS name there.
    expect(r.cleanCell).toMatchObject({ created: [], deleted: [], retained: [] });
    expect(r.doneCell.deleted.filter((n) => r.identity.includes(n))).toEqual([]);
    expect(r.doneCell.deleted.some((n) => n.startsWith("dns ") && n.includes(`${tenant}.`))).toBe(true);
    expect(r.doneDed).toMatchObject({ created: [], deleted: [], retained: [], replaced: [], aliased: [] });

    // The same cloud objects throughout, now in the dedicated stack's state, no longer retained.
    for (const [name, id] of r.objects) expect(r.cloud.names.get(name), name).toBe(id);
    const dedState = [...r.cloud.state(r.t.dedStack).values()];
    for (const name of r.identity) {
      const holder = dedState.find((x) => physicalName(x) === name);
      expect(holder, name).toBeDefined();
      expect(holder!.retainOnDelete, name).toBe(false);
    }
    expect([...r.cloud.state(r.t.cellStack).values()].filter((x) => x.urn.includes(`tenant-${tenant}`))).toEqual([]);
  }, 120_000);
});

describe("rollback of an enterprise upgrade before cutover", () => {
  it("hands the own key back: the cell claims it by alias and nothing is created or deleted", async () => {
    const { before, t } = upgrade("company-beta");
    const cloud = new SimCloud();
    const cell0 = await render(before, t.cellStack);
    cloud.up(cell0);
    const pooled = before.tenants.get("company-beta")!.tenant;
    cloud.move(t.cellStack, t.dedStack, keyHandoverUrns(pooled, ENV, t.cell));
    provision(t);
    cloud.up(await render(t.fleet(), t.cellStack));
    cloud.up(await render(t.fleet(), t.dedStack));
    const alias = "kms alias alias/tenancy/prod/tenants/company-beta";
    const keyObject = cloud.names.get(alias);

    // rollback.handback: whichever form the key has in the dedicated state goes back.
    const candidates = handbackKeyUrns("company-beta", "enterprise", ENV);
    const present = candidates.filter((u) => cloud.state(t.dedStack).has(u));
    expect(present).toEqual([candidates[1]]); // claimed by the dedicated program: DedicatedTenant form
    cloud.move(t.dedStack, t.cellStack, present);
    // rollback.files: the tenant file as it was; rollback.stacks: the cell.
    writeFileSync(join(t.dir, "tenants/company-beta.yaml"), readFileSync(join(projectDir, "tenants/company-beta.yaml"), "utf8"));
    rmSync(join(t.dir, `stacks/Pulumi.${t.dedStack}.yaml`));
    const back = cloud.up(await render(t.fleet(), t.cellStack));
    expect(back).toMatchObject({ created: [], deleted: [], retained: [], replaced: [] });
    expect(back.aliased.map((x) => x.from)).toEqual(expect.arrayContaining([renameStackInUrn(candidates[1]!, t.cellStack)]));
    expect(cloud.names.get(alias)).toBe(keyObject);
  }, 120_000);
});

/** A standard tenant pooled, then provisioned (cell and dedicated stack updated), in a fresh model. */
async function provisioned(tenant: string): Promise<{ t: Timeline; cloud: SimCloud }> {
  const { before, t } = upgrade(tenant);
  const cloud = new SimCloud();
  cloud.up(await render(before, t.cellStack));
  provision(t);
  cloud.up(await render(t.fleet(), t.cellStack));
  cloud.up(await render(t.fleet(), t.dedStack));
  return { t, cloud };
}

describe("negative controls of the hand-over model", () => {
  it("without the state move, the cell only forgets the identity (retained) and the dedicated stack fails on already exists", async () => {
    const { t, cloud } = await provisioned("startup-alpha");
    t.setPhase("cutover");
    const cell = cloud.up(await render(t.fleet(), t.cellStack));
    // Only the cell's storage alarm of the tenant (no identity: that is retained).
    expect(cell.deleted).toEqual([cellAlarm("startup-alpha")]);
    const role = tenantRoleName("tenancy", ENV, "startup-alpha");
    expect(cell.retained).toEqual(
      expect.arrayContaining([`iam role policy ${role}/tenant-access`, `iam role ${role}`, "secret tenancy/prod/tenants/startup-alpha/database", "secret tenancy/prod/tenants/startup-alpha/stripe_api_key"]),
    );
    const ded = await render(t.fleet(), t.dedStack);
    expect(() => cloud.up(ded)).toThrow(AlreadyExistsError);
  }, 120_000);

  it("without the aliases, the moved resources are not claimed and the dedicated stack fails on already exists", async () => {
    const { t, cloud } = await provisioned("startup-alpha");
    cloud.move(t.cellStack, t.dedStack, identityHandoverUrns(t.fleet().tenants.get("startup-alpha")!.tenant, ENV, t.cell));
    t.setPhase("cutover");
    cloud.up(await render(t.fleet(), t.cellStack));
    const ded = await render(t.fleet(), t.dedStack);
    const stripped = { ...ded, resources: ded.resources.map((x) => ({ ...x, options: { ...x.options, aliases: [] } })) };
    expect(() => cloud.up(stripped)).toThrow(AlreadyExistsError);
  }, 120_000);
});
