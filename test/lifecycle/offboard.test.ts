/**
 * Offboarding, suspension and resumption against live PostgreSQL (see harness.ts for the test
 * doubles: no Pulumi run, no RDS snapshot and no Secrets Manager call happens here; the fakes
 * record what was asked).
 */
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DirectoryBucketStore } from "../../automation/lifecycle/adapters/directoryBucket.ts";
import { MissingAdapterError, unavailableBackupStore, unavailableSecrets, unavailableSnapshots } from "../../automation/lifecycle/adapters/unavailable.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { silentLogger, type LifecyclePorts } from "../../automation/lifecycle/ports.ts";
import { LifecycleService } from "../../automation/lifecycle/service.ts";
import { LifecycleWorker } from "../../automation/lifecycle/engine/worker.ts";
import { editTenantText, isoSeconds } from "../../infra/model/fleetFiles/index.ts";
import { restoreDump } from "../../automation/lifecycle/pg/copy.ts";
import { prepareSession } from "../../automation/lifecycle/pg/sql.ts";
import { loadFleet, requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { CELL, CELL_STACK, createScenario, gitLog, loginOf, schemaState, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { clientConfig, connect, createApplicationSchema, startWriter } from "./tenantDb.ts";

let bench: Bench;
beforeAll(async () => {
  // No tenant here has a role in a cell and a dedicated database at once: one server holds both.
  bench = await startBench({ single: true });
});
afterAll(async () => {
  await bench?.stop();
});

/** Nothing of the tenant is gone: data, role, file, stacks, secrets. */
async function expectNothingDeleted(s: Scenario, data: string): Promise<void> {
  expect(await schemaState(s.cell, s.tenant)).toBe(data);
  expect(await loginOf(s.cell, s.tenant)).not.toBeUndefined();
  expect(existsSync(join(s.root, "tenants", `${s.tenant}.yaml`))).toBe(true);
  expect(existsSync(join(s.root, "tenants", "archive", `${s.tenant}.yaml`))).toBe(false);
  expect(s.runner.calls.filter((c) => c.op === "destroy")).toEqual([]);
  expect(s.secrets.calls).toEqual([]);
}

/**
 * The scenario's service with some ports replaced (e.g. a control plane started without a backup
 * store): same database, repository, clock and test doubles.
 */
function serviceWith(s: Scenario, over: Partial<LifecyclePorts>): LifecycleService {
  const ports: LifecyclePorts = {
    clock: s.clock, log: silentLogger, repo: s.repo, runner: s.runner,
    databases: { cell: async () => clientConfig(s.cell), dedicated: async () => clientConfig(s.ded) },
    backups: s.backups, snapshots: s.snapshots, secrets: s.secrets,
    ...over,
  };
  return new LifecycleService(s.pool, ports, { ...DEFAULT_LIFECYCLE_CONFIG, cutoverTimeoutMs: 10_000 });
}

describe("offboarding preflight", () => {
  it("without a backup store fails before any change: the tenant keeps its file, LOGIN and data; configured, a retry goes on", async () => {
    const s = await createScenario(bench, { prefix: "pre" });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 10);
      const data = await schemaState(s.cell, s.tenant);
      const fileBefore = readFileSync(join(s.root, "tenants", `${s.tenant}.yaml`), "utf8");
      const commitsBefore = gitLog(s.root);
      const bare = serviceWith(s, { backups: unavailableBackupStore() });
      const wf = await bare.requestOffboard(s.tenant, { graceDays: 0 });
      const r = await bare.engine.run(wf.id);
      expect(r).toMatchObject({ state: "failed", step: "offboard.preflight" });
      expect(r.error).toBe(
        `offboarding of tenant ${s.tenant} cannot go ahead: (1) final schema dumps of cell use1-01 (prod) have nowhere to go: the S3 BackupStore adapter is off (TENANCY_LIFECYCLE_AWS) ` +
          "and TENANCY_LIFECYCLE_BACKUP_DIR is not set; set TENANCY_LIFECYCLE_AWS: on (the cell buckets), or TENANCY_LIFECYCLE_BACKUP_DIR to a directory standing in for them (a local directory, not S3). " +
          "Nothing was changed: the tenant keeps its file, its access (LOGIN) and its data; configure what is named and retry the workflow",
      );
      // Nothing changed: LOGIN, data, file, commits; no stack run, no backup, no secret touched.
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
      await connect(s.cell, { user: pgTenantIdent(s.tenant), password: TENANT_PASSWORD }).then((c) => c.end());
      await expectNothingDeleted(s, data);
      expect(readFileSync(join(s.root, "tenants", `${s.tenant}.yaml`), "utf8")).toBe(fileBefore);
      expect(gitLog(s.root)).toEqual(commitsBefore);
      expect(s.runner.calls).toEqual([]);
      expect(await bare.engine.backups({ workflowId: wf.id })).toEqual([]);
      expect(await bare.engine.steps(wf.id)).toEqual([]);

      // The store configured (the scenario's directory) and the workflow retried: the preflight
      // passes, records what it found, and the offboarding runs to its end.
      await s.service.engine.retry(wf.id);
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "succeeded" });
      const steps = await s.service.engine.steps(wf.id);
      expect(steps.map((x) => x.step)).toEqual([
        "offboard.preflight", "offboard.files", "offboard.stacks", "offboard.grace", "offboard.backup", "offboard.delete", "offboard.archive", "offboard.detach", "offboard.secrets",
      ]);
      expect(steps[0]!.output).toEqual({
        backups: { prod: `directory ${join(s.backups.root, "prod-use1-01")} (a local directory standing in for the cell bucket, not S3)` },
        secrets: "fake Secrets Manager (us-east-1): requests are recorded, no secret is deleted",
      });
      expect(await schemaState(s.cell, s.tenant)).toBe("absent");
    } finally {
      await s.close();
    }
  });

  it("names every unusable port at once: RDS snapshots and Secrets Manager of a dedicated tenant", async () => {
    const s = await createScenario(bench, { prefix: "prd", tier: "dedicated", dedicatedCidr: "10.72.0.0/16" });
    try {
      const bare = serviceWith(s, { snapshots: unavailableSnapshots(), secrets: unavailableSecrets() });
      const wf = await bare.requestOffboard(s.tenant, { graceDays: 0 });
      const r = await bare.engine.run(wf.id);
      expect(r).toMatchObject({ state: "failed", step: "offboard.preflight" });
      expect(r.error).toBe(
        `offboarding of tenant ${s.tenant} cannot go ahead: ` +
          `(1) no final RDS snapshot of tenancy-prod-${s.tenant} (us-east-1) can be taken: the DatabaseSnapshots adapter (CreateDBSnapshot + CopyDBSnapshot, ModifyDBInstance) is off (TENANCY_LIFECYCLE_AWS); ` +
          "set TENANCY_LIFECYCLE_AWS: on and TENANCY_LIFECYCLE_BACKUP_KMS_KEY; " +
          "(2) the tenant's secrets (us-east-1) cannot be scheduled for deletion: the SecretsManager adapter (DeleteSecret with a recovery window) is off (TENANCY_LIFECYCLE_AWS); set TENANCY_LIFECYCLE_AWS: on. " +
          "Nothing was changed: the tenant keeps its file, its access (LOGIN) and its data; configure what is named and retry the workflow",
      );
      expect(s.runner.calls).toEqual([]);
      expect(s.runner.deployed.has(`dedicated-${s.tenant}-prod`)).toBe(true);
      expect(s.snapshots.requests).toEqual([]);
      expect(requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant.lifecycle).toBe("active");
    } finally {
      await s.close();
    }
  });

  it("checks again before the final dump: a store gone during the grace period stops it before LOGIN is revoked", async () => {
    const s = await createScenario(bench, { prefix: "gone" });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 10);
      const data = await schemaState(s.cell, s.tenant);
      const wf = await s.service.requestOffboard(s.tenant, { graceDays: 5 });
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "waiting", step: "offboard.grace" });
      expect(s.secrets.checks).toEqual(["us-east-1"]);
      // The control plane restarted without its backup store; the grace period ends.
      s.clock.advanceDays(5);
      const bare = serviceWith(s, { backups: unavailableBackupStore() });
      const r = await bare.engine.run(wf.id);
      expect(r).toMatchObject({ state: "failed", step: "offboard.backup" });
      expect(r.error).toMatch(/^offboarding of tenant \S+ cannot go ahead: \(1\) final schema dumps of cell use1-01 \(prod\) have nowhere to go: .*LOGIN was not revoked, no backup was taken and nothing was deleted; configure what is named and retry the workflow$/);
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
      expect(await schemaState(s.cell, s.tenant)).toBe(data);
      expect(await bare.engine.backups({ workflowId: wf.id })).toEqual([]);
      expect(s.secrets.calls).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("a check that may pass later (throttling, the network) is retried, not failed; the unavailable ports refuse naming what to set", async () => {
    const s = await createScenario(bench, { prefix: "thr" });
    try {
      let throttled = true;
      const secrets = Object.assign(Object.create(s.secrets) as typeof s.secrets, {
        check: async (region: string) => {
          if (throttled) throw new Error(`ListSecrets (${region}) failed: AWS said ThrottlingException`);
          return s.secrets.check(region);
        },
      });
      const flaky = serviceWith(s, { secrets });
      const wf = await flaky.requestOffboard(s.tenant);
      const r = await flaky.engine.run(wf.id);
      expect(r).toMatchObject({ state: "running", step: "offboard.preflight", error: "ListSecrets (us-east-1) failed: AWS said ThrottlingException" });
      expect(s.runner.calls).toEqual([]);
      throttled = false;
      s.clock.advance(60_000);
      expect(await flaky.engine.runDue()).toMatchObject([{ state: "waiting", step: "offboard.grace" }]);
    } finally {
      await s.close();
    }
    const missing = await unavailableBackupStore().check({ env: "prod", cell: "use1-01" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MissingAdapterError);
    await expect(unavailableSnapshots().check("tenancy-prod-acme", "us-east-1")).rejects.toThrow(/set TENANCY_LIFECYCLE_AWS: on and TENANCY_LIFECYCLE_BACKUP_KMS_KEY$/);
    await expect(unavailableSecrets().check("us-east-1")).rejects.toThrow(/set TENANCY_LIFECYCLE_AWS: on$/);
    await expect(new DirectoryBucketStore(join(s.root, "no-such-dir")).check({ env: "prod", cell: "use1-01" })).rejects.toThrow(
      /^the directory standing in for the cell buckets, .*no-such-dir, is not usable \(ENOENT.*\); create it writable for the control plane, or change TENANCY_LIFECYCLE_BACKUP_DIR$/,
    );
  });
});

describe("offboarding a pooled tenant", () => {
  it("waits out the grace period, refuses to delete early or without a recorded backup, then dumps, drops, archives and schedules secrets", async () => {
    const s = await createScenario(bench, { prefix: "off" });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 60);
      const data = await schemaState(s.cell, s.tenant);
      // The tenant's objects in the cell bucket (the directory standing in for it), and a bystander's.
      const cellDir = join(s.backups.root, "prod-use1-01");
      const put = (key: string, text: string) => {
        mkdirSync(dirname(join(cellDir, key)), { recursive: true });
        writeFileSync(join(cellDir, key), text);
      };
      put(`tenants/${s.tenant}/invoices/2026-02.pdf`, "invoice of february");
      put(`tenants/${s.tenant}/avatars/u1.png`, "png bytes");
      put(`tenants/${s.bystander}/invoices/2026-02.pdf`, "the bystander's invoice");
      const wf = await s.service.requestOffboard(s.tenant);

      // Day 0: the request is recorded, then the workflow waits 30 days.
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "waiting", step: "offboard.grace", wakeAt: new Date("2026-04-01T09:00:00Z") });
      const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect([t.lifecycle, t.offboarding]).toEqual(["offboarding", { requestedAt: "2026-03-02T09:00:00Z", graceDays: 30 }]);
      expect(s.runner.ups()).toEqual([CELL_STACK]);
      await expectNothingDeleted(s, data);
      // Running it again early changes nothing (it is not due; forced, the wait step waits again).
      s.clock.advanceDays(29);
      expect(await s.service.engine.runDue()).toEqual([]);
      expect(await s.service.engine.run(wf.id, { force: true })).toMatchObject({ state: "waiting", step: "offboard.grace" });
      await expectNothingDeleted(s, data);

      // Early, with the wait bypassed by hand (a step row forged in the database): the backup is
      // taken, but the deletion refuses because the grace period is not over.
      await s.pool.query("INSERT INTO lifecycle_steps (workflow_id, step, ordinal, output, completed_at) VALUES ($1, 'offboard.grace', 3, '{}', now())", [wf.id]);
      const early = await s.service.engine.run(wf.id, { force: true });
      expect(early).toMatchObject({ state: "failed", step: "offboard.delete" });
      expect(early.error).toBe(
        `refusing to delete data for tenant ${s.tenant}: its grace period runs until 2026-04-01T09:00:00.000Z (requested 2026-03-02T09:00:00Z, 30 days); nothing was deleted`,
      );
      await expectNothingDeleted(s, data);
      expect((await s.service.engine.backups({ workflowId: wf.id })).map((b) => b.kind)).toEqual(["schema-dump", "object-copy"]);
      expect(existsSync(join(cellDir, `tenants/${s.tenant}/invoices/2026-02.pdf`))).toBe(true);

      // After the grace period, but with the backup record gone: still refused.
      s.clock.advanceDays(1);
      await s.pool.query("DELETE FROM lifecycle_backups WHERE workflow_id = $1", [wf.id]);
      await s.service.engine.retry(wf.id);
      const noBackup = await s.service.engine.run(wf.id);
      expect(noBackup).toMatchObject({ state: "failed", step: "offboard.delete" });
      expect(noBackup.error).toBe(`refusing to delete data for tenant ${s.tenant}: no final backup is recorded for prod (workflow ${wf.id}); nothing was deleted`);
      await expectNothingDeleted(s, data);

      // The backup step runs again (its row removed), records the dump, and everything proceeds.
      await s.pool.query("DELETE FROM lifecycle_steps WHERE workflow_id = $1 AND step = 'offboard.backup'", [wf.id]);
      await s.service.engine.retry(wf.id);
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "succeeded" });

      // Kept: the dump, recorded and restorable to exactly the tenant's data.
      const [backup, objectCopy] = await s.service.engine.backups({ workflowId: wf.id });
      expect(backup).toMatchObject({ env: "prod", kind: "schema-dump", tenantId: s.tenant });
      // Kept: the copy of every object under tenants/<id>/, outside that prefix, with its manifest.
      const copyDir = join(cellDir, `backups/tenants/${s.tenant}/${wf.id}/prod-objects`);
      expect(objectCopy).toMatchObject({ env: "prod", kind: "object-copy", location: `file://${copyDir}/objects/`, bytes: 28, detail: { cell: "use1-01", objects: 2 } });
      expect(readFileSync(join(copyDir, "objects/invoices/2026-02.pdf"), "utf8")).toBe("invoice of february");
      expect(readFileSync(join(copyDir, "objects/avatars/u1.png"), "utf8")).toBe("png bytes");
      const manifest = JSON.parse(readFileSync(join(copyDir, "manifest.json"), "utf8")) as { objects: { key: string; copyKey: string }[] };
      expect(manifest.objects.map((o) => [o.key, o.copyKey])).toEqual([
        [`tenants/${s.tenant}/avatars/u1.png`, `backups/tenants/${s.tenant}/${wf.id}/prod-objects/objects/avatars/u1.png`],
        [`tenants/${s.tenant}/invoices/2026-02.pdf`, `backups/tenants/${s.tenant}/${wf.id}/prod-objects/objects/invoices/2026-02.pdf`],
      ]);
      // Deleted: the tenant's prefix; the bystander's objects stay.
      expect(existsSync(join(cellDir, `tenants/${s.tenant}`))).toBe(false);
      expect(readFileSync(join(cellDir, `tenants/${s.bystander}/invoices/2026-02.pdf`), "utf8")).toBe("the bystander's invoice");
      const deleteStep = (await s.service.engine.steps(wf.id)).find((x) => x.step === "offboard.delete");
      expect(deleteStep?.output).toMatchObject({ objects: { prod: { versions: 2, deleteMarkers: 0 } } });
      const restoredDb = await bench.dedServer.createDatabase(`restore_${s.tenant.replace(/-/g, "_")}`, bench.dedAdmin);
      const r = await bench.dedServer.connect({ ...bench.dedAdmin, database: restoredDb });
      await prepareSession(r);
      await restoreDump(r, createReadStream(DirectoryBucketStore.fileOf(backup!.location)).pipe(createGunzip()));
      await r.end();
      expect(await schemaState({ server: bench.dedServer, admin: bench.dedAdmin, database: restoredDb }, s.tenant)).toBe(data);

      // Deleted: the schema and role (the cell stack let go of the tenant), the DNS name.
      expect(await schemaState(s.cell, s.tenant)).toBe("absent");
      expect(await loginOf(s.cell, s.tenant)).toBeUndefined();
      expect(await loginOf(s.cell, s.bystander)).toBe(true);
      expect(s.runner.dns.get(CELL_STACK)?.has(s.tenant)).toBe(false);
      expect(s.runner.ups()).toEqual([CELL_STACK, CELL_STACK]);
      // Secrets: every one of the tenant's, scheduled with the 30-day recovery window.
      expect([...s.secrets.scheduled]).toEqual([
        [`tenancy/prod/tenants/${s.tenant}/database`, { region: "us-east-1", recoveryWindowDays: 30 }],
        [`tenancy/prod/tenants/${s.tenant}/stripe_api_key`, { region: "us-east-1", recoveryWindowDays: 30 }],
        [`tenancy/prod/tenants/${s.tenant}/teams/support/webhook_secret`, { region: "us-east-1", recoveryWindowDays: 30 }],
      ]);

      // The file is archived with the record of what was kept where, and the fleet ignores it.
      expect(existsSync(join(s.root, "tenants", `${s.tenant}.yaml`))).toBe(false);
      const archive = parse(readFileSync(join(s.root, "tenants", "archive", `${s.tenant}.yaml`), "utf8")) as Record<string, unknown>;
      expect(archive).toMatchObject({
        workflow: wf.id,
        deployment: "pooled",
        offboarding: { requestedAt: "2026-03-02T09:00:00Z", graceDays: 30, graceEndedAt: "2026-04-01T09:00:00.000Z" },
        kept: [
          { env: "prod", kind: "schema-dump", location: backup!.location, sha256: backup!.sha256, bytes: backup!.bytes, cell: "use1-01" },
          { env: "prod", kind: "object-copy", location: objectCopy!.location, sha256: objectCopy!.sha256, bytes: 28, cell: "use1-01", objects: 2 },
        ],
        deleted: { schemaDroppedFrom: [CELL_STACK], objectsDeletedFrom: [`${CELL_STACK}: tenants/${s.tenant}/`] },
        secrets: { recoveryWindowDays: 30 },
      });
      expect(String(archive.tenantFile)).toContain(`id: ${s.tenant}`);
      const fleet = loadFleet({ projectDir: s.root });
      expect(fleet.problems).toEqual([]);
      expect([...fleet.fleet!.tenants.keys()]).toEqual([s.bystander]);
      expect(gitLog(s.root).slice(1)).toEqual([
        `tenants: offboard ${s.tenant}: data kept until 2026-04-01T09:00:00.000Z`,
        `tenants: offboard ${s.tenant}: archived after the grace period; final backups recorded`,
      ]);
    } finally {
      await s.close();
    }
  });

  it("stops writes for the final dump, and refuses to drop data written after it", async () => {
    let afterBackup: () => Promise<void> = async () => undefined;
    const s = await createScenario(bench, { prefix: "late" }, { hooks: { afterRecord: async (_wf, step) => void (step === "offboard.backup" && (await afterBackup())) } });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 10);
      const app = startWriter(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 5);
      await app.waitForCommits(2);
      afterBackup = async () => {
        // The dump revoked LOGIN and ended the application's session...
        await app.done;
        expect(app.stats.stoppedBy).toMatch(/terminat|connection error/);
        expect(await loginOf(s.cell, s.tenant)).toBe(false);
        // ...then an update of the cell stack that refreshes restores LOGIN (the stacks render it for
        // an offboarding tenant) and the application writes again before the deletion.
        await s.runner.up(CELL_STACK, { workflowId: "other", tenant: s.bystander, reason: "another tenant's change" });
        const c = await connect(s.cell, { user: pgTenantIdent(s.tenant), password: TENANT_PASSWORD });
        await c.query(`INSERT INTO ${pgTenantIdent(s.tenant)}.events VALUES ('after the dump', now(), NULL)`);
        await c.end();
      };
      const wf = await s.service.requestOffboard(s.tenant, { graceDays: 0 });
      const r = await s.service.engine.run(wf.id);
      expect(r).toMatchObject({ state: "failed", step: "offboard.delete" });
      expect(r.error).toBe(
        `schema ${pgTenantIdent(s.tenant)} changed after its final backup (tables events); nothing was dropped. Take the backup again (re-run the backup step) before deleting`,
      );
      const c = await connect(s.cell, { user: pgTenantIdent(s.tenant), password: TENANT_PASSWORD });
      expect((await c.query(`SELECT 1 FROM ${pgTenantIdent(s.tenant)}.events WHERE payload = 'after the dump'`)).rowCount).toBe(1);
      await c.end();
      expect(existsSync(join(s.root, "tenants", `${s.tenant}.yaml`))).toBe(true);
    } finally {
      await s.close();
    }
  });

  it("an object written under tenants/<id>/ after its copy: the deletion refuses and keeps schema and objects; a new backup lets it finish", async () => {
    const s = await createScenario(bench, { prefix: "obj" });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 5);
      const data = await schemaState(s.cell, s.tenant);
      const prefixDir = join(s.backups.root, `prod-${CELL}/tenants/${s.tenant}`);
      mkdirSync(prefixDir, { recursive: true });
      writeFileSync(join(prefixDir, "a.txt"), "a");
      const wf = await s.service.requestOffboard(s.tenant, { graceDays: 0 });
      const realCopy = s.backups.copyObjects.bind(s.backups);
      s.backups.copyObjects = async (...args) => {
        const copy = await realCopy(...args);
        writeFileSync(join(prefixDir, "a.txt"), "overwritten after the copy");
        return copy;
      };
      const r = await s.service.engine.run(wf.id);
      expect(r).toMatchObject({ state: "failed", step: "offboard.delete" });
      expect(r.error).toMatch(/holds 1 current object version\(s\) that the recorded copy .* does not \(written after it\): tenants\/.*\/a.txt; nothing was deleted/);
      expect(await schemaState(s.cell, s.tenant)).toBe(data);
      expect(readFileSync(join(prefixDir, "a.txt"), "utf8")).toBe("overwritten after the copy");
      // A person takes the backup again (the step's row and its records removed); the retry finishes and deletes the prefix.
      s.backups.copyObjects = realCopy;
      await s.pool.query("DELETE FROM lifecycle_backups WHERE workflow_id = $1", [wf.id]);
      await s.pool.query("DELETE FROM lifecycle_steps WHERE workflow_id = $1 AND step = 'offboard.backup'", [wf.id]);
      await s.service.engine.retry(wf.id);
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "succeeded" });
      expect(existsSync(prefixDir)).toBe(false);
      const copy = (await s.service.engine.backups({ workflowId: wf.id })).find((b) => b.kind === "object-copy")!;
      expect(readFileSync(join(DirectoryBucketStore.fileOf(copy.location), "a.txt"), "utf8")).toBe("overwritten after the copy");
      // Idempotent: deleting the prefix again (a crashed step re-run) deletes nothing and refuses nothing.
      const { recordedCopy } = await import("../../automation/lifecycle/workflows/backup.ts");
      expect(await s.backups.purgeObjects({ kind: "cell-prefix", env: "prod", cell: CELL, tenant: s.tenant }, recordedCopy(copy))).toEqual({ versions: 0, deleteMarkers: 0 });
    } finally {
      await s.close();
    }
  });

  it("resuming during the grace period cancels the offboarding", async () => {
    const s = await createScenario(bench, { prefix: "keep" });
    try {
      const off = await s.service.requestOffboard(s.tenant, { graceDays: 10 });
      await s.service.engine.run(off.id);
      const res = await s.service.requestResume(s.tenant);
      expect(await s.service.engine.get(off.id)).toMatchObject({ state: "cancelled", note: `superseded by resume workflow ${res.id}` });
      expect(await s.service.engine.run(res.id)).toMatchObject({ state: "succeeded" });
      const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect([t.lifecycle, t.offboarding]).toEqual(["active", undefined]);
      // The cancelled offboarding never runs again, even after its grace period.
      s.clock.advanceDays(11);
      expect(await s.service.engine.runDue()).toEqual([]);
      expect(s.secrets.calls).toEqual([]);
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe("offboarding a dedicated tenant", () => {
  it("destroys the stack only after the grace period and an available, recorded snapshot, lifting protection for that stack alone", async () => {
    const s = await createScenario(bench, { prefix: "ded", tier: "dedicated", dedicatedCidr: "10.70.0.0/16" });
    try {
      const stack = `dedicated-${s.tenant}-prod`;
      // The tenant's own bucket (the directory standing in for it) holds two objects.
      const bucketDir = join(s.backups.root, `prod-tenant-${s.tenant}`);
      mkdirSync(join(bucketDir, "exports"), { recursive: true });
      writeFileSync(join(bucketDir, "exports/2026-02.csv"), "id,total\n1,10\n");
      writeFileSync(join(bucketDir, "logo.svg"), "<svg/>");
      const wf = await s.service.requestOffboard(s.tenant, { graceDays: 14 });
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "waiting", step: "offboard.grace" });
      expect(s.runner.ups()).toEqual([stack]);
      s.clock.advanceDays(14);
      // The snapshot is requested and still being created: the workflow waits, nothing is destroyed.
      expect(await s.service.engine.runDue()).toEqual([{ id: wf.id, state: "waiting", step: "offboard.backup", wakeAt: new Date("2026-03-16T09:01:00Z") }]);
      expect(s.runner.calls.filter((c) => c.op === "destroy")).toEqual([]);
      expect(s.snapshots.unprotected).toEqual([]);
      expect(await s.service.engine.backups({ workflowId: wf.id })).toEqual([]);
      const snapshotId = `tenancy-prod-${s.tenant}-offboard-${wf.id.slice(0, 8)}`;
      expect(s.snapshots.requests).toEqual([{ instance: `tenancy-prod-${s.tenant}`, snapshotId, region: "us-east-1" }]);

      s.clock.advance(60_000);
      expect(await s.service.engine.runDue()).toMatchObject([{ state: "succeeded" }]);
      const [backup, objectCopy] = await s.service.engine.backups({ workflowId: wf.id });
      expect(backup).toMatchObject({ env: "prod", kind: "rds-snapshot", location: `rds:us-east-1:snapshot:${snapshotId}` });
      // The bucket's objects, copied once the snapshot was available, into the bucket of the region's first prod cell.
      const copyDir = join(s.backups.root, `prod-${CELL}/backups/tenants/${s.tenant}/${wf.id}/prod-objects`);
      expect(objectCopy).toMatchObject({ env: "prod", kind: "object-copy", location: `file://${copyDir}/objects/`, bytes: 20, detail: { cell: CELL, objects: 2 } });
      expect(readFileSync(join(copyDir, "objects/exports/2026-02.csv"), "utf8")).toBe("id,total\n1,10\n");
      expect(readFileSync(join(copyDir, "objects/logo.svg"), "utf8")).toBe("<svg/>");
      const destroys = s.runner.calls.filter((c) => c.op === "destroy");
      expect(destroys).toHaveLength(1);
      expect(destroys[0]!.stack).toBe(stack);
      expect(destroys[0]!.release).toEqual({ kind: "offboarding", stack, workflowId: wf.id, backupId: backup!.id, gracePeriodEndedAt: "2026-03-16T09:00:00.000Z" });
      expect(s.snapshots.unprotected).toEqual([{ instance: `tenancy-prod-${s.tenant}`, region: "us-east-1", release: destroys[0]!.release }]);
      // Before the destroy, and only after the backup is recorded: the file says so
      // (offboarding.finalBackupAt) and an up carries what the stack renders then into its state.
      expect(s.runner.calls.filter((c) => c.stack === stack).map((c) => `${c.op}: ${c.reason}`)).toEqual([
        "up: offboard offboard.stacks: offboarding requested",
        "up: offboard offboard.delete: final backup and object copy recorded: bucket and zones forceDestroy, RDS deletion protection off",
        "destroy: offboard offboard.delete: offboarding after the grace period and a recorded final snapshot",
      ]);
      const subject = `offboard ${s.tenant}: final backups recorded; the dedicated stacks may be emptied`;
      expect(gitLog(s.root).filter((l) => l.includes(subject))).toHaveLength(1);
      const recorded = execFileSync("git", ["-C", s.root, "log", "-1", "--format=%H", `--grep=${subject}`, "--fixed-strings"], { encoding: "utf8" }).trim();
      const atRecord = parse(execFileSync("git", ["-C", s.root, "show", `${recorded}:tenants/${s.tenant}.yaml`], { encoding: "utf8" })) as { offboarding: Record<string, unknown> };
      expect(atRecord.offboarding).toEqual({ requestedAt: "2026-03-02T09:00:00Z", graceDays: 14, finalBackupAt: isoSeconds(backup!.recordedAt), objectBackupAt: isoSeconds(objectCopy!.recordedAt) });
      expect(s.runner.deployed.has(stack)).toBe(false);
      expect(existsSync(join(s.root, "stacks", `Pulumi.${stack}.yaml`))).toBe(false);
      const archive = parse(readFileSync(join(s.root, "tenants", "archive", `${s.tenant}.yaml`), "utf8")) as Record<string, unknown>;
      expect(archive).toMatchObject({ kept: [{ env: "prod", kind: "rds-snapshot", snapshotId }, { env: "prod", kind: "object-copy", cell: CELL, objects: 2 }], deleted: { stacksDestroyed: [stack] } });
      expect([...s.secrets.scheduled.keys()]).toContain(`tenancy/prod/tenants/${s.tenant}/database/master`);
      expect(loadFleet({ projectDir: s.root }).problems).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("an object written to the bucket after its copy stops the offboarding before the file records anything and before any destroy", async () => {
    const s = await createScenario(bench, { prefix: "late", tier: "dedicated", dedicatedCidr: "10.72.0.0/16" });
    try {
      const bucketDir = join(s.backups.root, `prod-tenant-${s.tenant}`);
      mkdirSync(bucketDir, { recursive: true });
      writeFileSync(join(bucketDir, "a.txt"), "a");
      const wf = await s.service.requestOffboard(s.tenant, { graceDays: 0 });
      // Up to the backup: the snapshot is still being created, so the workflow waits after requesting it.
      await s.service.engine.run(wf.id);
      s.clock.advance(60_000);
      // The copy is taken in this run; a write lands right after it (an app still running).
      const realCopy = s.backups.copyObjects.bind(s.backups);
      s.backups.copyObjects = async (...args) => {
        const copy = await realCopy(...args);
        writeFileSync(join(bucketDir, "late.txt"), "written after the copy");
        return copy;
      };
      const r = await s.service.engine.run(wf.id, { force: true });
      expect(r).toMatchObject({ state: "failed", step: "offboard.delete" });
      expect(r.error).toMatch(new RegExp(`^file://${bucketDir}/ holds 1 current object version\\(s\\) that the recorded copy file://.*/manifest.json does not \\(written after it\\): late.txt; nothing was deleted`));
      expect(s.runner.calls.filter((c) => c.op === "destroy")).toEqual([]);
      expect(s.snapshots.unprotected).toEqual([]);
      const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(t.offboarding).toEqual({ requestedAt: "2026-03-02T09:00:00Z", graceDays: 0 });
      expect(readFileSync(join(bucketDir, "late.txt"), "utf8")).toBe("written after the copy");
    } finally {
      await s.close();
    }
  });

  it("negative control: a workflow whose backups were recorded without an object copy records finalBackupAt only: the destroy keeps the bucket", async () => {
    const s = await createScenario(bench, { prefix: "old", tier: "dedicated", dedicatedCidr: "10.73.0.0/16" });
    try {
      const wf = await s.service.requestOffboard(s.tenant, { graceDays: 0 });
      await s.service.engine.run(wf.id);
      s.clock.advance(60_000);
      // As recorded by the workflow before object copies existed: the snapshot alone.
      s.backups.copyObjects = async () => {
        throw new Error("copyObjects is not called in this scenario");
      };
      await s.pool.query("INSERT INTO lifecycle_steps (workflow_id, step, ordinal, output, completed_at) VALUES ($1, 'offboard.backup', 4, '{}', now())", [wf.id]);
      await s.pool.query(
        "INSERT INTO lifecycle_backups (workflow_id, tenant_id, env, kind, location, detail, recorded_at) VALUES ($1, $2, 'prod', 'rds-snapshot', 'rds:us-east-1:snapshot:old', '{}', now())",
        [wf.id, s.tenant],
      );
      expect(await s.service.engine.run(wf.id, { force: true })).toMatchObject({ state: "succeeded" });
      const stack = `dedicated-${s.tenant}-prod`;
      expect(s.runner.calls.filter((c) => c.stack === stack && c.op === "up").map((c) => c.reason).at(-1)).toBe(
        "offboard offboard.delete: final backup recorded, no object copy: bucket kept, forceDestroy on the zones, RDS deletion protection off",
      );
      const subject = `offboard ${s.tenant}: final backups recorded; the dedicated stacks may be emptied`;
      const recorded = execFileSync("git", ["-C", s.root, "log", "-1", "--format=%H", `--grep=${subject}`, "--fixed-strings"], { encoding: "utf8" }).trim();
      const atRecord = parse(execFileSync("git", ["-C", s.root, "show", `${recorded}:tenants/${s.tenant}.yaml`], { encoding: "utf8" })) as { offboarding: Record<string, unknown> };
      expect(Object.keys(atRecord.offboarding).sort()).toEqual(["finalBackupAt", "graceDays", "requestedAt"]);
    } finally {
      await s.close();
    }
  });

  it("a failed snapshot stops the offboarding before anything is destroyed", async () => {
    const s = await createScenario(bench, { prefix: "snap", tier: "dedicated", dedicatedCidr: "10.71.0.0/16" }, { snapshots: ["failed"] });
    try {
      const wf = await s.service.requestOffboard(s.tenant, { graceDays: 0 });
      const r = await s.service.engine.run(wf.id);
      expect(r).toMatchObject({ state: "failed", step: "offboard.backup" });
      expect(r.error).toMatch(/is failed; nothing was deleted/);
      expect(s.runner.calls.filter((c) => c.op === "destroy")).toEqual([]);
      expect(s.snapshots.unprotected).toEqual([]);
      expect(s.runner.deployed.has(`dedicated-${s.tenant}-prod`)).toBe(true);
      expect(existsSync(join(s.root, "tenants", `${s.tenant}.yaml`))).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe("suspension and resumption", () => {
  it("revokes LOGIN and ends open sessions, points DNS at the suspension page, keeps the data; resumption restores both", async () => {
    const s = await createScenario(bench, { prefix: "sus" });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 20);
      const data = await schemaState(s.cell, s.tenant);
      const app = startWriter(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 3);
      await app.waitForCommits(2);
      const sus = await s.service.requestSuspend(s.tenant);
      expect(await s.service.engine.run(sus.id)).toMatchObject({ state: "succeeded" });
      await app.done;
      expect(app.stats.stoppedBy).toMatch(/terminat|connection error/);
      expect(await loginOf(s.cell, s.tenant)).toBe(false);
      expect(s.runner.dns.get(CELL_STACK)?.get(s.tenant)).toBe("suspended.tenancy.example.com");
      expect(requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant.lifecycle).toBe("suspended");
      await expect(connect(s.cell, { user: pgTenantIdent(s.tenant), password: TENANT_PASSWORD })).rejects.toThrow(/not permitted to log in/);
      const steps = await s.service.engine.steps(sus.id);
      expect(steps.map((x) => x.step)).toEqual(["suspend.files", "suspend.stacks"]);
      expect(steps[1]!.output.terminatedSessions).toBe(1);

      const res = await s.service.requestResume(s.tenant);
      expect(await s.service.engine.run(res.id)).toMatchObject({ state: "succeeded" });
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
      expect(s.runner.dns.get(CELL_STACK)?.get(s.tenant)).toBe("ingress.shared-prod-use1-01.tenancy.example.com");
      const c = await connect(s.cell, { user: pgTenantIdent(s.tenant), password: TENANT_PASSWORD });
      await c.end();
      // Data: the rows the application committed before the suspension, nothing else changed.
      const now = JSON.parse(await schemaState(s.cell, s.tenant)) as { sums: { table: string; rows: number }[] };
      const was = JSON.parse(data) as { sums: { table: string; rows: number }[] };
      expect(now.sums.find((t) => t.table === "events")!.rows).toBe(was.sums.find((t) => t.table === "events")!.rows + app.stats.events);
      expect(s.runner.ups()).toEqual([CELL_STACK, CELL_STACK]);
      expect(gitLog(s.root).slice(1)).toEqual([`tenants: suspend ${s.tenant}`, `tenants: resume ${s.tenant}`]);
    } finally {
      await s.close();
    }
  });

  it("a failed stack update is retried and the suspension completes; the file is committed once", async () => {
    const s = await createScenario(bench, { prefix: "retry" });
    try {
      s.runner.failNext.add(CELL_STACK);
      const sus = await s.service.requestSuspend(s.tenant);
      const first = await s.service.engine.run(sus.id);
      expect(first).toMatchObject({ state: "running", step: "suspend.stacks", error: `run of ${CELL_STACK} failed (injected)` });
      expect(first.wakeAt).toEqual(new Date("2026-03-02T09:01:00Z"));
      expect(await loginOf(s.cell, s.tenant)).toBe(true);
      s.clock.advance(60_000);
      expect(await s.service.engine.runDue()).toMatchObject([{ state: "succeeded" }]);
      expect(await loginOf(s.cell, s.tenant)).toBe(false);
      expect(gitLog(s.root).slice(1)).toEqual([`tenants: suspend ${s.tenant}`]);
    } finally {
      await s.close();
    }
  });
});

describe("the lifecycle worker and the engine's tenant lock", () => {
  it("adopts an offboarding requested by editing the tenant file, keeping its request time", async () => {
    const s = await createScenario(bench, { prefix: "adopt" });
    try {
      // As the control plane's DELETE /api/tenants/:id or the billing reconciler do: the file only.
      const path = `tenants/${s.tenant}.yaml`;
      const text = (await s.repo.read(path))!;
      await s.repo.commit({
        tenantId: s.tenant, workflowId: "api", summary: "offboard (API)",
        files: { [path]: editTenantText(text, [[["lifecycle"], "offboarding"], [["offboarding"], { requestedAt: "2026-02-20T00:00:00Z" }]]) },
      });
      const worker = new LifecycleWorker(s.service, s.root, { log: silentLogger });
      const [id] = await worker.adoptOffboardings();
      expect(await worker.adoptOffboardings()).toEqual([]);
      expect(await s.service.engine.run(id!)).toMatchObject({ state: "waiting", step: "offboard.grace", wakeAt: new Date("2026-03-22T00:00:00Z") });
      const steps = await s.service.engine.steps(id!);
      expect(steps.find((x) => x.step === "offboard.files")!.output).toMatchObject({ requestedAt: "2026-02-20T00:00:00Z", graceDays: 30, commit: null });
    } finally {
      await s.close();
    }
  });

  it("does not start an offboarding again whose workflow failed after writing the request time", async () => {
    const s = await createScenario(bench, { prefix: "refail" }, { config: { maxAttempts: 1 } });
    try {
      // tenantctl records the workflow; the worker runs it minutes later, so the request time its
      // first step writes in the file is after the workflow's creation.
      const wf = await s.service.requestOffboard(s.tenant);
      s.clock.advance(120_000);
      s.runner.failNext.add(CELL_STACK);
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "failed", step: "offboard.stacks" });
      const worker = new LifecycleWorker(s.service, s.root, { log: silentLogger });
      expect(await worker.adoptOffboardings()).toEqual([]);
      expect((await s.service.engine.list(s.tenant)).map((w) => [w.kind, w.state])).toEqual([["offboard", "failed"]]);
    } finally {
      await s.close();
    }
  });

  it("a second worker finds the tenant busy while a step runs, and requests wait for the step to end", async () => {
    let probe: (() => Promise<void>) | undefined;
    const s = await createScenario(bench, { prefix: "lock" }, { hooks: { afterEffects: async () => void (await probe?.()) } });
    try {
      const wf = await s.service.requestSuspend(s.tenant);
      const seen: unknown[] = [];
      probe = async () => {
        probe = undefined;
        seen.push(await s.service.engine.run(wf.id));
        seen.push(await s.service.requestResume(s.tenant).catch((e: unknown) => (e as Error).message));
      };
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "succeeded" });
      expect(seen).toEqual([{ id: wf.id, state: "busy" }, `a workflow step for tenant ${s.tenant} is running right now; ask again when it has finished`]);
      expect(s.runner.ups()).toEqual([CELL_STACK]);
    } finally {
      await s.close();
    }
  });
});
