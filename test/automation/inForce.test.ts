/**
 * The program in force for a stack (automation/rollouts/inForce.ts), rule by rule, on live
 * PostgreSQL with the control plane's schema: rollouts, their stacks and runs written as the
 * engine and the workers leave them.
 */
import type { Pool } from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { pinRunProgram, programInForce, programsInUse } from "../../automation/rollouts/inForce.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const sha = (c: string) => c.repeat(40);
const [A, B, C1, C2, C3, O, HEAD, P] = ["a", "b", "c", "d", "e", "f", "1", "2"].map(sha) as [string, string, string, string, string, string, string, string];

let pg: TestPostgres;
let pool: Pool;
let minute = 0;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.stop();
});
beforeEach(async () => {
  pool = createPool(await pg.controlPlaneDatabase());
  minute = 0;
});
afterEach(async () => {
  await pool?.end();
});

/** A run ended (or not) in order: each later than the one before. */
async function run(stack: string, r: { state: "queued" | "running" | "succeeded" | "failed"; commit?: string; program?: string; operation?: string }): Promise<string> {
  minute++;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO runs (stack, operation, state, commit_sha, program_commit, finished_at)
     VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 IN ('succeeded', 'failed') THEN now() + make_interval(mins => $6) END) RETURNING id`,
    [stack, r.operation ?? "up", r.state, r.commit ?? null, r.program ?? null, minute],
  );
  return rows[0]!.id;
}
async function rollout(commit: string, state: string, stacks: Record<string, string | null>): Promise<string> {
  minute++;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO rollouts (name, commit, state, waves, finished_at)
     VALUES ($1, $2, $3, '[]', CASE WHEN $3 IN ('succeeded', 'aborted', 'superseded') THEN now() + make_interval(mins => $4) END) RETURNING id`,
    [`rollout of ${commit.slice(0, 4)}`, commit, state, minute],
  );
  for (const [stack, runId] of Object.entries(stacks)) {
    await pool.query("INSERT INTO rollout_stacks (rollout_id, wave, stack, state, run_id) VALUES ($1, 0, $2, 'running', $3)", [rows[0]!.id, stack, runId]);
  }
  return rows[0]!.id;
}

describe("the program in force for a stack", () => {
  it("rule 4: a stack never updated, in a fleet that never completed a rollout: the head, recorded on the run", async () => {
    expect(await programInForce(pool, "shared-prod-use1-01", HEAD)).toBe(HEAD);
    const id = await run("shared-prod-use1-01", { state: "running", commit: HEAD });
    expect(await pinRunProgram(pool, { runId: id, stack: "shared-prod-use1-01", head: HEAD })).toBe(HEAD);
    expect((await pool.query("SELECT program_commit FROM runs WHERE id = $1", [id])).rows[0]).toEqual({ program_commit: HEAD });
  });

  it("rule 3: no rollout ever succeeded: the program of the stack's newest successful update, not a failed one, not a preview", async () => {
    const s = "shared-prod-use1-01";
    await run(s, { state: "succeeded", commit: C1 }); // from before pins: its commit is its program
    await run(s, { state: "failed", commit: C2 });
    await run(s, { state: "succeeded", commit: C3, operation: "preview" });
    expect(await programInForce(pool, s, HEAD)).toBe(C1);
    await run(s, { state: "succeeded", commit: sha("9"), program: P });
    expect(await programInForce(pool, s, HEAD)).toBe(P);
    // Another stack's updates are not this one's.
    expect(await programInForce(pool, "shared-prod-use1-02", HEAD)).toBe(HEAD);
    // A rollout under way that has not reached the stack changes nothing: the head is not taken.
    await rollout(B, "halted", { [s]: await run(s, { state: "failed", program: B }) });
    expect(await programInForce(pool, s, HEAD)).toBe(P);
  });

  it("rules 1 and 2: the rollout that reached the stack last, whatever its end; for a stack none reached, the newest succeeded rollout", async () => {
    const [s1, s2, s3] = ["shared-prod-use1-01", "shared-prod-use1-02", "dedicated-acme-prod"];
    await rollout(O, "succeeded", { [s1]: await run(s1, { state: "succeeded", program: O }), [s2]: await run(s2, { state: "succeeded", program: O }) });
    await rollout(A, "succeeded", { [s1]: await run(s1, { state: "succeeded", program: A }), [s2]: await run(s2, { state: "succeeded", program: A }) });
    // B halted at s2's failure after reaching s1; then a tenant change of s1 pinned to B.
    await rollout(B, "halted", { [s1]: await run(s1, { state: "succeeded", program: B }), [s2]: await run(s2, { state: "failed", program: B }) });
    await run(s1, { state: "succeeded", program: B });
    expect(await programInForce(pool, s1, HEAD)).toBe(B);
    expect(await programInForce(pool, s2, HEAD)).toBe(A);
    // s3 (created meanwhile) was in no rollout: the fleet's, A; B has not succeeded.
    expect(await programInForce(pool, s3, HEAD)).toBe(A);
    // Aborted, B still runs where it reached.
    await pool.query("UPDATE rollouts SET state = 'aborted', finished_at = now() WHERE commit = $1", [B]);
    expect(await programInForce(pool, s1, HEAD)).toBe(B);
    expect(await programInForce(pool, s3, HEAD)).toBe(A);
    // A run of s3 under way is pinned to A; a rollout's run keeps its own pin.
    const plain = await run(s3, { state: "running" });
    expect(await pinRunProgram(pool, { runId: plain, stack: s3, head: HEAD })).toBe(A);
    const ofRollout = await run(s2, { state: "running", program: C2 });
    expect(await pinRunProgram(pool, { runId: ofRollout, stack: s2, head: HEAD })).toBe(C2);

    // In use: B (s1), A (s2, the fleet's, s3's running run), C2 (a running run); not O.
    expect([...(await programsInUse(pool))].sort()).toEqual([A, B, C2].sort());
  });

  it("platform stacks are never rolled out: the head", async () => {
    await rollout(A, "succeeded", { "shared-prod-use1-01": await run("shared-prod-use1-01", { state: "succeeded", program: A }) });
    expect(await programInForce(pool, "platform-us-east-1", HEAD)).toBe(HEAD);
    const id = await run("platform-us-east-1", { state: "running" });
    expect(await pinRunProgram(pool, { runId: id, stack: "platform-us-east-1", head: HEAD })).toBe(HEAD);
    // Negative control: a cell in the same fleet gets the rollout's program.
    expect(await programInForce(pool, "shared-prod-use1-02", HEAD)).toBe(A);
  });

  it("names a run that does not exist", async () => {
    await expect(pinRunProgram(pool, { runId: "00000000-0000-0000-0000-000000000000", stack: "shared-prod-use1-01", head: HEAD })).rejects.toThrow(
      "run 00000000-0000-0000-0000-000000000000 of stack shared-prod-use1-01 does not exist; its program cannot be pinned",
    );
  });
});
