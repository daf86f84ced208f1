/**
 * pg-boss 12 start-up of the control plane (automation/queue.ts) on live PostgreSQL: the queues
 * are created with their settings and a restart updates them (pg-boss refuses a policy in
 * updateQueue); a database still on the pg-boss 10 schema is refused with what to do, untouched.
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createLogger } from "../../automation/log.ts";
import { QUEUES, startBoss } from "../../automation/queue.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let server: TestPostgres;
beforeAll(async () => {
  server = await startTestPostgres();
}, 180_000);
afterAll(async () => {
  await server?.stop();
});

const log = createLogger("silent");

it("creates both queues with their retry and expiry settings, and a restart updates them", async () => {
  const url = await server.newDatabase();
  const first = await startBoss(url, { runExpireHours: 3 }, log);
  await first.stop({ graceful: false, close: true });
  // Restart with another run expiry: the stack-run queue takes it, its policy stays.
  const second = await startBoss(url, { runExpireHours: 5 }, log);
  try {
    const run = await second.getQueue(QUEUES.stackRun);
    expect(run && { policy: run.policy, retryLimit: run.retryLimit, retryDelay: run.retryDelay, retryBackoff: run.retryBackoff, expireInSeconds: run.expireInSeconds }).toEqual({
      policy: "standard", retryLimit: 3, retryDelay: 30, retryBackoff: true, expireInSeconds: 5 * 3600,
    });
    // No regions given: only the queue of before region routing.
    expect(await second.getQueue("stack-run-eu-west-1")).toBeNull();
    const reconcile = await second.getQueue(QUEUES.reconcile);
    expect(reconcile && { policy: reconcile.policy, retryLimit: reconcile.retryLimit, expireInSeconds: reconcile.expireInSeconds }).toEqual({ policy: "standard", retryLimit: 20, expireInSeconds: 900 });
  } finally {
    await second.stop({ graceful: false, close: true });
  }
  // With the platform regions: one stack-run queue each, with the same settings.
  const third = await startBoss(url, { runExpireHours: 4, regions: ["us-east-1", "eu-west-1"] }, log);
  try {
    for (const region of ["us-east-1", "eu-west-1"]) {
      const q = await third.getQueue(`stack-run-${region}`);
      expect(q && { policy: q.policy, retryLimit: q.retryLimit, retryDelay: q.retryDelay, retryBackoff: q.retryBackoff, expireInSeconds: q.expireInSeconds }).toEqual({
        policy: "standard", retryLimit: 3, retryDelay: 30, retryBackoff: true, expireInSeconds: 4 * 3600,
      });
    }
  } finally {
    await third.stop({ graceful: false, close: true });
  }
}, 120_000);

it("refuses a database on the pg-boss 10 schema (24) with what to do, and leaves it as it was", async () => {
  const url = await server.newDatabase();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("CREATE SCHEMA pgboss; CREATE TABLE pgboss.version (version int PRIMARY KEY, maintained_on timestamptz, cron_on timestamptz); INSERT INTO pgboss.version VALUES (24, NULL, NULL)");
    await expect(startBoss(url, { runExpireHours: 3 }, log)).rejects.toThrow(
      "the control plane's database has pg-boss schema 24 (pg-boss 10 or older); pg-boss 12 migrates from schema 25 on. Stop the old control plane once no job is pending (SELECT count(*) FROM pgboss.job WHERE state < 'completed'), run DROP SCHEMA pgboss CASCADE, and start again (see docs/control-plane.md)",
    );
    expect((await client.query("SELECT version FROM pgboss.version")).rows).toEqual([{ version: 24 }]);
    expect((await client.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'pgboss'")).rows).toEqual([{ n: 1 }]);
    // Negative control: once the old schema is dropped, the same database starts.
    await client.query("DROP SCHEMA pgboss CASCADE");
    const boss = await startBoss(url, { runExpireHours: 3 }, log);
    await boss.stop({ graceful: false, close: true });
  } finally {
    await client.end();
  }
}, 120_000);
