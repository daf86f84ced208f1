/**
 * Suspension and resumption: the tenant file's lifecycle, then an update of every stack the
 * tenant has resources in. The stacks do the rest (docs/lifecycle.md: a suspended tenant's role loses
 * LOGIN and its DNS name points at the platform's suspension target); the workflow checks the
 * LOGIN change in each database and ends the sessions a suspended role still had open. Data is
 * never touched.
 *
 * Resumption also ends an offboarding whose grace period is still running (it supersedes the
 * offboard workflow until its final backup starts): lifecycle back to active, the offboarding
 * block removed.
 */
import { stacksOfTenant } from "../../../infra/model/fleet.ts";
import { cellStackName, dedicatedStackName } from "../../../infra/model/naming.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { done, PermanentError, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { ensureMember } from "../pg/sql.ts";
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { EditRefusedError, lifecycleEdit } from "../../../infra/model/fleetFiles/index.ts";
import { FILE_COMMIT, STACK_RUN } from "./policies.ts";
import { expectLogin, terminateSessions, withSession } from "../pg/sessions.ts";
import { envsOf, upStacks } from "./stacks.ts";
import { commitFiles, requireTenant } from "./tenantFile.ts";

/** A refused edit is permanent: retrying cannot change the tenant's state. */
function refused<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof EditRefusedError) throw new PermanentError(err.message);
    throw err;
  }
}

/** Every database the tenant has a role in, with the stack that manages it. */
function databasesOf(t: Tenant): { env: string; stack: string; side: "cell" | "dedicated"; cell?: string }[] {
  const out: { env: string; stack: string; side: "cell" | "dedicated"; cell?: string }[] = [];
  for (const env of envsOf(t)) {
    if (t.deployment === "pooled") {
      const cell = t.placement[env]!;
      out.push({ env, stack: cellStackName(env, cell), side: "cell", cell });
    } else {
      out.push({ env, stack: dedicatedStackName(t.id, env), side: "dedicated" });
      const from = t.migration?.from[env];
      if (from) out.push({ env, stack: cellStackName(env, from), side: "cell", cell: from });
    }
  }
  return out;
}

async function checkLogin(ctx: StepContext, t: Tenant, expected: boolean): Promise<number> {
  let terminated = 0;
  for (const db of databasesOf(t)) {
    const config = db.side === "cell" ? await ctx.ports.databases.cell(db.env, db.cell!) : await ctx.ports.databases.dedicated(t.id, db.env);
    await withSession(config, async (c) => {
      // A migrating tenant's cell role has no LOGIN from cutover on, whatever the lifecycle.
      const phase = t.deployment === "dedicated" ? t.migration?.phase : undefined;
      const want = db.side === "cell" && (phase === "cutover" || phase === "cleanup") ? false : expected;
      await expectLogin(c, t.id, want, db.stack);
      if (!want) {
        await ensureMember(c, pgTenantIdent(t.id));
        terminated += await terminateSessions(c, t.id, ctx.config.cutoverTimeoutMs);
      }
    });
  }
  return terminated;
}

const suspendFiles = {
  name: "suspend.files",
  policy: FILE_COMMIT,
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const files = refused(() => lifecycleEdit(tf.text, tf.tenant, "suspended"));
    const commit = files ? await commitFiles(ctx, `suspend ${tf.tenant.id}`, files) : undefined;
    return done({ commit: commit ?? null });
  },
};

const suspendStacks = {
  name: "suspend.stacks",
  policy: STACK_RUN,
  async run(ctx: StepContext) {
    const { tenant } = await requireTenant(ctx);
    if (tenant.lifecycle !== "suspended") throw new PermanentError(`tenant ${tenant.id} is ${tenant.lifecycle} again; its file changed outside this workflow`);
    const runs = await upStacks(ctx, stacksOfTenant(tenant), "suspension: LOGIN revoked, DNS to the suspension target");
    const terminated = await checkLogin(ctx, tenant, false);
    return done({ runs, terminatedSessions: terminated });
  },
};

export const suspendWorkflow: WorkflowDef<"suspend"> = { kind: "suspend", steps: [suspendFiles, suspendStacks] };

const resumeFiles = {
  name: "resume.files",
  policy: FILE_COMMIT,
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    const files = refused(() => lifecycleEdit(tf.text, t, "active"));
    const what = t.lifecycle === "offboarding" ? `cancel the offboarding of ${t.id}` : `resume ${t.id}`;
    const commit = files ? await commitFiles(ctx, what, files) : undefined;
    return done({ commit: commit ?? null, was: t.lifecycle });
  },
};

const resumeStacks = {
  name: "resume.stacks",
  policy: STACK_RUN,
  async run(ctx: StepContext) {
    const { tenant } = await requireTenant(ctx);
    if (tenant.lifecycle !== "active") throw new PermanentError(`tenant ${tenant.id} is ${tenant.lifecycle} again; its file changed outside this workflow`);
    const runs = await upStacks(ctx, stacksOfTenant(tenant), "resumption: LOGIN restored, DNS to the tenant's ingress");
    await checkLogin(ctx, tenant, true);
    return done({ runs });
  },
};

export const resumeWorkflow: WorkflowDef<"resume"> = {
  kind: "resume",
  steps: [resumeFiles, resumeStacks],
  // Cancelling an offboarding is possible during its grace period: until the final backup, which
  // revokes LOGIN in the database itself (a drift an `up` without refresh would not undo).
  supersedes: [{ kind: "offboard", before: "offboard.backup" }],
};
