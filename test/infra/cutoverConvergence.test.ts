/**
 * The upgrade's switch (automation/lifecycle/workflows/cutover.ts) changes two things outside
 * Pulumi inside the write window: the tenant role on the cell loses LOGIN (ALTER ROLE ... NOLOGIN),
 * and the connection document gets a version naming the dedicated database (PutSecretValue, then
 * AWSCURRENT). The `up`s after it (cutover.connect) must not undo either: proven on the real renders
 * of both stacks with the engine double (test/support/engineSim.ts, nothing is deployed), with and
 * without a refresh before the `up`. The negative control is the same switch's SQL with the tenant
 * file still at phase `copying` (no hand-over, no commit): a refreshing `up` of the cell then gives
 * the role its LOGIN back, which is why the workflow commits phase cutover before the window.
 * docs/lifecycle.md ("Change capture and the write window") says why.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { upgradeProvisionEdit } from "../../infra/model/fleetFiles/index.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { identityHandoverUrns, renameStackInUrn } from "../../infra/model/handover.ts";
import { cellStackName, databaseSecretName, dedicatedStackName } from "../../infra/model/naming.ts";
import { mockRotatedPassword } from "../../plan/render/mockOutputs.ts";
import { unwrapSecrets, type RenderedStack } from "../../plan/types.ts";
import { SimCloud } from "../support/engineSim.ts";
import { editYaml, render, tempFleet } from "./support.ts";

const ENV = "prod";
const TENANT = "startup-alpha";
const ROLE = "postgresql:index/role:Role";
const VERSION = "aws:secretsmanager/secretVersion:SecretVersion";

interface Doc {
  host: string;
  port: number;
  database: string;
  [k: string]: unknown;
}

function documentOf(r: RenderedStack, tenant: string): Doc {
  const v = r.resources.find((x) => x.type === VERSION && x.urn.endsWith(`::tenant-${tenant}-database`));
  if (!v) throw new Error(`${r.name} renders no connection document of ${tenant}`);
  return JSON.parse(String((unwrapSecrets(v.inputs) as { secretString: string }).secretString)) as Doc;
}

/** The dedicated instance's master secret (postgresInstance.ts): `{ engine, host, port, dbname, username, password }`. */
function masterOf(r: RenderedStack): { host: string; port: number; dbname: string } {
  const v = r.resources.find((x) => x.type === VERSION && String((unwrapSecrets(x.inputs) as { secretId: string }).secretId).includes("/database/master"));
  if (!v) throw new Error(`${r.name} renders no master secret`);
  return JSON.parse(String((unwrapSecrets(v.inputs) as { secretString: string }).secretString)) as { host: string; port: number; dbname: string };
}

function roleUrn(r: RenderedStack, tenant: string): string {
  const role = r.resources.find((x) => x.type === ROLE && x.urn.endsWith(`::tenant-${tenant}-db-access`));
  if (!role) throw new Error(`${r.name} renders no database role of ${tenant}`);
  return role.urn;
}

/**
 * The upgrade of TENANT up to the switch, then the convergence ups: `committed` says whether the
 * tenant file is at phase cutover when they run (the workflow commits it before the window).
 */
async function upgradeThroughSwitch(opts: { refresh: boolean; committed: boolean }) {
  let dir = "";
  const before = tempFleet((d) => (dir = d));
  const fleet = (): Fleet => requireFleet({ projectDir: dir });
  const pooled = before.tenants.get(TENANT)!.tenant;
  if (pooled.deployment !== "pooled") throw new Error(`${TENANT} is not pooled in the example fleet`);
  const cellStack = cellStackName(ENV, pooled.placement[ENV]!);
  const dedStack = dedicatedStackName(TENANT, ENV);
  const setPhase = (phase: string) => editYaml(dir, `tenants/${TENANT}.yaml`, (doc) => void ((doc.migration as Record<string, unknown>).phase = phase));
  const cloud = new SimCloud();

  const cell0 = await render(before, cellStack);
  cloud.up(cell0);
  const text = readFileSync(join(dir, `tenants/${TENANT}.yaml`), "utf8");
  for (const [path, body] of Object.entries(upgradeProvisionEdit(before, text, pooled, new Date("2026-11-01T00:00:00Z")).files)) writeFileSync(join(dir, path), body!);
  cloud.up(await render(fleet(), cellStack));
  const dedProvisioned = await render(fleet(), dedStack);
  cloud.up(dedProvisioned);
  setPhase("copying");

  // cutover.switch: the state move, the commit of phase cutover, then the window's two writes.
  if (opts.committed) {
    cloud.move(cellStack, dedStack, identityHandoverUrns(fleet().tenants.get(TENANT)!.tenant, ENV, pooled.placement[ENV]!));
    setPhase("cutover");
  }
  const role = roleUrn(cell0, TENANT);
  cloud.writeOutOfBand(cellStack, role, { login: false });
  const docName = databaseSecretName(before.platform.appName, ENV, TENANT);
  const current = JSON.parse(cloud.currentSecret.get(docName)!) as Doc;
  // pointDocument: the current document with the dedicated database's host, port and database, as
  // the runner's locator reads them from the master secret the dedicated stack wrote at provisioning
  // (automation/lifecycle/adapters/secretsManagerDatabases.ts).
  const ded = masterOf(dedProvisioned);
  const switched: Doc = { ...current, host: ded.host, port: ded.port, database: ded.dbname };
  cloud.currentSecret.set(docName, JSON.stringify(switched));
  const roleObject = cloud.state(cellStack).get(role)!.cloudId;

  // cutover.connect: the cell stacks, then the dedicated stacks.
  if (opts.refresh) cloud.refresh(cellStack);
  const cellUp = cloud.up(await render(fleet(), cellStack));
  if (opts.refresh) cloud.refresh(dedStack);
  const dedRender = await render(fleet(), dedStack);
  const dedUp = cloud.up(dedRender);
  return { dedRender, cloud, cellStack, dedStack, role, roleObject, docName, current, switched, cellUp, dedUp };
}

describe.each([
  ["up without refresh (what cutover.connect runs)", false],
  ["up after a refresh (pulumi up --refresh by an operator)", true],
])("the convergence up after the switch, %s", (_label, refresh) => {
  it("changes nothing the switch did: the cell role stays without LOGIN, the document keeps naming the dedicated database", async () => {
    const r = await upgradeThroughSwitch({ refresh, committed: true });
    // The switch changed the document's host, port and database only, and the cell's document
    // differs from the dedicated program's render in exactly those.
    expect(Object.keys(r.switched).filter((k) => JSON.stringify(r.switched[k]) !== JSON.stringify(r.current[k])).sort()).toEqual(["database", "host"]);
    expect(r.cloud.values.get(r.roleObject)).toMatchObject({ login: false });
    // The dedicated stack reads the password from the document it converges to
    // (tenantDatabaseAccess.ts, rotatedDocumentOf): for real that read answers the switched
    // document, whose password the switch kept; the mock runtime's read answers
    // mockRotatedPassword, so the password is compared with that and every other field with the switch's.
    const readPassword = mockRotatedPassword(r.docName);
    expect(JSON.parse(r.cloud.currentSecret.get(r.docName)!)).toEqual({ ...r.switched, password: readPassword });
    expect(documentOf(r.dedRender, TENANT)).toEqual({ ...r.switched, password: readPassword });
    // What the engine did: the role is updated only when it diffs against the unrefreshed state
    // (to the value the switch already set); the dedicated stack writes a document version with
    // the switch's content (the moved version's inputs still name the cell).
    expect(r.cellUp.updated.includes(r.role)).toBe(!refresh);
    // The cell no longer serves the tenant: its storage alarm of the tenant goes (the dedicated
    // stack's own exist since provisioning, infra/model/storageAlarms.ts); nothing else is deleted.
    expect(r.cellUp).toMatchObject({ created: [], deleted: [`cloudwatch alarm tenancy/prod/tenants/${TENANT}/object-storage/${r.cellStack}`], replaced: [] });
    expect(r.dedUp.replaced.filter((u) => u.includes(`::tenant-${TENANT}-database`))).toEqual([
      renameStackInUrn(`urn:pulumi:${r.cellStack}::saas-tenancy::saas-tenancy:components:DedicatedTenant$saas-tenancy:components:ConnectionSecret$${VERSION}::tenant-${TENANT}-database`, r.dedStack),
    ]);
    expect(r.dedUp.deleted).toEqual([]);
  });
});

describe("negative control", () => {
  it("the switch's SQL while the file still says copying: a refreshing up of the cell gives the role its LOGIN back", async () => {
    const r = await upgradeThroughSwitch({ refresh: true, committed: false });
    expect(r.cellUp.updated).toContain(r.role);
    expect(r.cloud.values.get(r.roleObject)).toMatchObject({ login: true });
  });
});
