/**
 * The password through a pooled -> dedicated upgrade: the switch points the connection document
 * at the dedicated database and keeps its password (automation/lifecycle/workflows/cutover.ts),
 * so the dedicated role must be created with that password, read from the document while the
 * migration block is there, and kept from it afterwards (environments.<env>.movedAt, written by
 * the upgrade's cleanup.files), not with the dedicated stack's own random one: with it, every
 * login after the switch failed until the dedicated stack's `up` rewrote the document. Real
 * renders under the mock runtime, whose document read answers mockRotatedPassword(secret).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { upgradeProvisionEdit } from "../../infra/model/fleetFiles/index.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { cellStackName, databaseSecretName, dedicatedStackName } from "../../infra/model/naming.ts";
import { mockRotatedPassword } from "../../plan/render/mockOutputs.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { editYaml, exampleFleet, plain, render, T, tempFleet } from "./support.ts";

const ID = "startup-alpha";
const ENVS = ["prod", "staging"];
const APP = exampleFleet().platform.appName;

function rolePassword(r: RenderedStack): unknown {
  const role = r.resources.find((x) => x.type === T.pgRole && x.name === `tenant-${ID}-db-access`);
  if (!role) throw new Error(`${r.name}: no role of ${ID}`);
  return plain(role).password;
}

/** The example fleet with ID upgraded by the workflow's own edit, then set to `phase` ("done": block removed, as cleanup.files leaves it). */
async function upgradedRenders(phase: string, opts: { movedAt: boolean } = { movedAt: true }): Promise<{ env: string; cell: RenderedStack | undefined; ded: RenderedStack }[]> {
  const base = exampleFleet();
  const pooled = base.tenants.get(ID)!.tenant;
  if (pooled.deployment !== "pooled") throw new Error(`${ID} is not pooled`);
  let dir = "";
  tempFleet((d) => {
    dir = d;
    const path = join(d, `tenants/${ID}.yaml`);
    const edit = upgradeProvisionEdit(base, readFileSync(path, "utf8"), pooled, new Date("2026-12-01T10:00:00Z"));
    for (const [p, body] of Object.entries(edit.files)) writeFileSync(join(d, p), body!);
    editYaml(d, `tenants/${ID}.yaml`, (doc) => {
      if (phase !== "done") {
        (doc.migration as Record<string, unknown>).phase = phase;
        return;
      }
      delete doc.migration;
      if (opts.movedAt) for (const e of ENVS) (doc.environments as Record<string, Record<string, unknown>>)[e]!.movedAt = "2026-12-01T10:00:00Z";
    });
  });
  const fleet = requireFleet({ projectDir: dir });
  const out = [];
  for (const env of ENVS) {
    const cell = phase === "done" ? undefined : await render(fleet, cellStackName(env, pooled.placement[env]!));
    out.push({ env, cell, ded: await render(fleet, dedicatedStackName(ID, env)) });
  }
  return out;
}

describe("the tenant's database password through an upgrade", () => {
  for (const phase of ["provisioning", "cutover", "done"]) {
    it(`${phase}: the dedicated role${phase === "provisioning" ? "" : " and document"} take the connection document's password; the cell keeps its own`, async () => {
      for (const { env, cell, ded } of await upgradedRenders(phase)) {
        const expected = mockRotatedPassword(databaseSecretName(APP, env, ID));
        expect(rolePassword(ded), ded.name).toBe(expected);
        if (phase !== "provisioning") {
          const doc = ded.resources.find((x) => x.type === T.version && x.name === `tenant-${ID}-database`)!;
          expect(JSON.parse(String(plain(doc).secretString)).password, `${ded.name} document`).toBe(expected);
        }
        // The cell's role was created with the random password its document holds: nothing changes there.
        if (cell) expect(rolePassword(cell), cell.name).not.toBe(expected);
      }
    });
  }

  it("negative control: once the migration block is gone without movedAt, the dedicated stack falls back to its own random password", async () => {
    for (const { env, ded } of await upgradedRenders("done", { movedAt: false })) {
      expect(rolePassword(ded), ded.name).not.toBe(mockRotatedPassword(databaseSecretName(APP, env, ID)));
    }
  });
});
