/**
 * Credential rotation: a new password for the tenant's database role, per environment, with
 * Secrets Manager's staging labels as the record of where the rotation is (docs/lifecycle.md,
 * "Credential rotation"). One role per tenant (the AWS "single user" strategy):
 *
 *   rotate.pending  a new connection document (same fields, new password) written as a version
 *                   labelled AWSPENDING only; AWSCURRENT, what applications read, is untouched.
 *                   The version id is the workflow id, so a re-run finds the version it wrote
 *                   and never makes a second password.
 *   rotate.set      ALTER ROLE tenant_<id> PASSWORD '<SCRAM verifier>' on the tenant's database
 *                   (the cell's or its dedicated one), as the master user; records the server's
 *                   time once the change is committed.
 *   rotate.verify   logs in as the tenant with the pending document (its host, port, database,
 *                   user, password; TLS as the master connection) and checks current_user.
 *   rotate.promote  AWSCURRENT moves to the new version (AWS labels the old one AWSPREVIOUS).
 *   rotate.record   commits environments.<env>.credentialsRotatedAt to the tenant file: from then
 *                   on the stacks read the password from the document (TenantDatabaseAccess).
 *   rotate.sync     `up` of the tenant's stacks of those environments, so their state holds the
 *                   rotated document (drift checks stay clean), then a login with AWSCURRENT.
 *   rotate.expire   after the overlap (TENANCY_ROTATION_OVERLAP_MINUTES) ends the role's sessions
 *                   opened before the password changed: the old password's last uses.
 *
 * PostgreSQL checks a password only when a session starts: sessions already open keep working
 * through the whole rotation, and new logins need the new password from rotate.set on. Every
 * step is idempotent (a crash after any of them resumes at the next). The password is never
 * recorded in the control plane: only in the secret's version and, as a verifier, in PostgreSQL.
 * The stacks never undo a rotation: the role's password is `ignoreChanges` in the program (set at
 * creation only), and the document they write takes the rotated password (rotate.record).
 */
import { randomInt } from "node:crypto";
import { z } from "zod";
import { DB_PASSWORD_LENGTH, PG_SSLMODE, RDS_CA_BUNDLE_URL } from "../../../infra/model/database.ts";
import { cellStackName, databaseSecretName, dedicatedStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { done, PermanentError, waitUntil, type StepContext, type StepDef, type WorkflowDef } from "../engine/engine.ts";
import type pg from "pg";
import { ensureMember, qi, ql } from "../pg/sql.ts";
import { scramVerifier } from "../pg/scram.ts";
import { CREDENTIAL_STEP, FILE_COMMIT, STACK_RUN } from "./policies.ts";
import { editTenantText, isoSeconds, tenantPath, type Edit } from "../../../infra/model/fleetFiles/index.ts";
import { withSession } from "../pg/sessions.ts";
import { envsOf, upStacks } from "./stacks.ts";
import { commitFiles, requireTenant } from "./tenantFile.ts";

export interface RotateParams {
  [k: string]: string[];
  /** The environments whose credential is rotated (all of the tenant's when requested without --env). */
  envs: string[];
}

const paramsSchema = z.object({ envs: z.array(z.string()).min(1) });

/** Why a tenant's credential cannot be rotated now, or undefined when it can. */
export function rotationRefusal(t: Tenant, envs: readonly string[]): string | undefined {
  if (t.lifecycle !== "active") {
    return `tenant ${t.id} is ${t.lifecycle}: its role has no LOGIN, so a new password could not be verified${t.lifecycle === "suspended" ? "; resume it first" : ""}`;
  }
  if (t.deployment === "dedicated" && t.migration) return `tenant ${t.id} is migrating to dedicated (phase ${t.migration.phase}); rotate after the upgrade has finished`;
  const known = envsOf(t);
  const unknown = envs.filter((e) => !known.includes(e));
  if (unknown.length > 0) return `tenant ${t.id} has no environment ${unknown.join(", ")} (it has ${known.join(", ")})`;
  return undefined;
}

/** The connection document's fields the rotation relies on (ConnectionSecret writes them). */
const documentSchema = z
  .object({ host: z.string().min(1), port: z.number().int(), database: z.string().min(1), user: z.string().min(1), password: z.string().min(1) })
  .passthrough();
type ConnectionDocument = z.infer<typeof documentSchema>;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A password like the program's (RandomPassword, DB_PASSWORD_LENGTH letters and digits). */
export function newPassword(): string {
  let out = "";
  for (let i = 0; i < DB_PASSWORD_LENGTH; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

interface Target {
  env: string;
  secret: string;
  region: string;
  database(): Promise<pg.ClientConfig>;
}

async function targets(ctx: StepContext): Promise<{ tenant: Tenant; list: Target[] }> {
  const parsed = paramsSchema.safeParse(ctx.workflow.params);
  if (!parsed.success) throw new PermanentError(`rotate workflow ${ctx.workflow.id} has malformed params: ${parsed.error.message}`);
  const { tenant: t, platform } = await requireTenant(ctx);
  const refusal = rotationRefusal(t, parsed.data.envs);
  if (refusal) throw new PermanentError(`${refusal}; the tenant's file changed since the rotation was requested`);
  const list = parsed.data.envs.map((env) => ({
    env,
    secret: databaseSecretName(platform.appName, env, t.id),
    region: t.region,
    database: () => (t.deployment === "pooled" ? ctx.ports.databases.cell(env, t.placement[env]!) : ctx.ports.databases.dedicated(t.id, env)),
  }));
  return { tenant: t, list };
}

function parseDocument(text: string, secret: string, versionId: string): ConnectionDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new PermanentError(`secret ${secret} version ${versionId} is not JSON; it is not a connection document`);
  }
  const doc = documentSchema.safeParse(raw);
  if (!doc.success) throw new PermanentError(`secret ${secret} version ${versionId} is not a connection document: ${doc.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return doc.data;
}

/** The pending version this workflow wrote (its id is the workflow id). */
async function pendingDocument(ctx: StepContext, target: Target): Promise<ConnectionDocument> {
  const v = await ctx.ports.secrets.version(target.secret, target.region, ctx.workflow.id);
  if (!v) throw new PermanentError(`secret ${target.secret} has no version ${ctx.workflow.id} (written by rotate.pending); it was removed outside this workflow`);
  return parseDocument(v.secretString, target.secret, v.versionId);
}

const pending: StepDef = {
  name: "rotate.pending",
  policy: CREDENTIAL_STEP,
  async run(ctx) {
    const { tenant, list } = await targets(ctx);
    const out: Record<string, { secret: string; versionId: string; previousVersionId: string | null }> = {};
    for (const target of list) {
      const mine = await ctx.ports.secrets.version(target.secret, target.region, ctx.workflow.id);
      if (mine) {
        out[target.env] = { secret: target.secret, versionId: mine.versionId, previousVersionId: null };
        continue;
      }
      const current = await ctx.ports.secrets.current(target.secret, target.region);
      const doc = parseDocument(current.secretString, target.secret, current.versionId);
      if (doc.user !== pgTenantIdent(tenant.id)) {
        throw new PermanentError(`secret ${target.secret} names user ${doc.user}, not ${pgTenantIdent(tenant.id)}; it is not this tenant's connection document, nothing was rotated`);
      }
      // The document's other fields stay; TLS is written as the program writes it now.
      const next = { ...doc, password: newPassword(), sslmode: PG_SSLMODE, sslrootcertUrl: RDS_CA_BUNDLE_URL };
      await ctx.ports.secrets.putPending(target.secret, target.region, ctx.workflow.id, JSON.stringify(next));
      ctx.log({ env: target.env, secret: target.secret, versionId: ctx.workflow.id }, "new connection document written as AWSPENDING");
      out[target.env] = { secret: target.secret, versionId: ctx.workflow.id, previousVersionId: current.versionId };
    }
    return done({ versions: out });
  },
};

const set: StepDef = {
  name: "rotate.set",
  policy: CREDENTIAL_STEP,
  async run(ctx) {
    const { tenant, list } = await targets(ctx);
    const role = pgTenantIdent(tenant.id);
    const out: Record<string, string> = {};
    for (const target of list) {
      const doc = await pendingDocument(ctx, target);
      out[target.env] = await withSession(await target.database(), async (c) => {
        if ((await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])).rowCount !== 1) {
          throw new PermanentError(`role ${role} does not exist in the ${target.env} database; its stack creates it (pulumi up)`);
        }
        await c.query(`ALTER ROLE ${qi(role)} WITH PASSWORD ${ql(scramVerifier(doc.password))}`);
        // Read after the change committed: every session that began before this time may have
        // used the previous password (rotate.expire ends them).
        const { rows } = await c.query<{ at: Date }>("SELECT clock_timestamp() AS at");
        return rows[0]!.at.toISOString();
      });
      ctx.log({ env: target.env, role }, "password of the tenant's role changed (SCRAM verifier)");
    }
    return done({ changedAt: out });
  },
};

const verify: StepDef = {
  name: "rotate.verify",
  policy: CREDENTIAL_STEP,
  async run(ctx) {
    const { tenant, list } = await targets(ctx);
    const role = pgTenantIdent(tenant.id);
    for (const target of list) {
      const who = await loginWith(target, await pendingDocument(ctx, target));
      if (who !== role) throw new PermanentError(`logged in with the new document of ${target.secret} as ${who}, expected ${role}`);
      ctx.log({ env: target.env, role }, "logged in with the new connection document");
    }
    return done({ verified: list.map((t) => t.env) });
  },
};

const promote: StepDef = {
  name: "rotate.promote",
  policy: CREDENTIAL_STEP,
  async run(ctx) {
    const { list } = await targets(ctx);
    const previous: Record<string, string | null> = {};
    for (const target of list) {
      previous[target.env] = (await ctx.ports.secrets.promote(target.secret, target.region, ctx.workflow.id)).previousVersionId;
      ctx.log({ env: target.env, secret: target.secret, versionId: ctx.workflow.id }, "new connection document is AWSCURRENT");
    }
    return done({ promotedAt: ctx.ports.clock.now().toISOString(), previous });
  },
};

/** Login as the tenant with a connection document (TLS settings from the master connection). */
async function loginWith(target: Target, doc: ConnectionDocument): Promise<string> {
  const master = await target.database();
  const as = { ...master, connectionString: undefined, host: doc.host, port: doc.port, database: doc.database, user: doc.user, password: doc.password };
  return withSession(as, async (c) => (await c.query<{ u: string }>("SELECT current_user AS u")).rows[0]!.u);
}

const record: StepDef = {
  name: "rotate.record",
  policy: FILE_COMMIT,
  async run(ctx) {
    const { list } = await targets(ctx);
    const promotedAt = ctx.outputs.get("rotate.promote")?.promotedAt;
    if (typeof promotedAt !== "string") throw new PermanentError("rotate.record runs after rotate.promote; its record is missing");
    // From this commit on the stacks read the password from the document (TenantDatabaseAccess).
    const at = isoSeconds(new Date(promotedAt));
    const tf = await requireTenant(ctx);
    const text = editTenantText(tf.text, list.map((t): Edit => [["environments", t.env, "credentialsRotatedAt"], at]));
    const commit = text === tf.text ? undefined : await commitFiles(ctx, `record the credential rotation of ${tf.tenant.id} (${list.map((t) => t.env).join(", ")})`, { [tenantPath(tf.tenant.id)]: text });
    return done({ commit: commit ?? null, credentialsRotatedAt: at });
  },
};

const sync: StepDef = {
  name: "rotate.sync",
  policy: STACK_RUN,
  async run(ctx) {
    const { tenant, list } = await targets(ctx);
    const stacks = list.map((t) => (tenant.deployment === "pooled" ? cellStackName(t.env, tenant.placement[t.env]!) : dedicatedStackName(tenant.id, t.env)));
    const runs = await upStacks(ctx, stacks, "credential rotation: the stack takes the rotated password from the connection document");
    // Whatever the update wrote, the document applications read must still log in.
    for (const target of list) {
      const current = await ctx.ports.secrets.current(target.secret, target.region);
      const who = await loginWith(target, parseDocument(current.secretString, target.secret, current.versionId)).catch((err: unknown) => {
        throw new Error(`after the update of its stack, the AWSCURRENT document of ${target.secret} (version ${current.versionId}) does not log in: ${(err as Error).message}`);
      });
      if (who !== pgTenantIdent(tenant.id)) throw new PermanentError(`the AWSCURRENT document of ${target.secret} logs in as ${who}, expected ${pgTenantIdent(tenant.id)}`);
    }
    return done({ runs });
  },
};

const expire: StepDef = {
  name: "rotate.expire",
  policy: CREDENTIAL_STEP,
  async run(ctx) {
    const promotedAt = ctx.outputs.get("rotate.promote")?.promotedAt;
    const changedAt = ctx.outputs.get("rotate.set")?.changedAt as Record<string, string> | undefined;
    if (typeof promotedAt !== "string" || !changedAt) throw new PermanentError("rotate.expire runs after rotate.set and rotate.promote; their records are missing");
    const until = new Date(Date.parse(promotedAt) + ctx.config.rotationOverlapMinutes * 60_000);
    if (ctx.ports.clock.now() < until) return waitUntil(until, `sessions opened with the previous password may go on until ${until.toISOString()}`);
    const { tenant, list } = await targets(ctx);
    const role = pgTenantIdent(tenant.id);
    const ended: Record<string, number> = {};
    for (const target of list) {
      const at = changedAt[target.env];
      if (!at) throw new PermanentError(`rotate.set recorded no time for ${target.env}`);
      ended[target.env] = await withSession(await target.database(), async (c) => {
        // Signalling the role's backends needs its privileges (the master is not SUPERUSER on RDS).
        await ensureMember(c, role);
        const older = "FROM pg_stat_activity WHERE usename = $1 AND backend_start < $2 AND pid <> pg_backend_pid()";
        const { rows } = await c.query<{ n: string }>(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::text AS n ${older}`, [role, at]);
        // Termination is asynchronous: the step is done when none of them is left.
        const deadline = Date.now() + ctx.config.cutoverTimeoutMs;
        while ((await c.query(`SELECT 1 ${older}`, [role, at])).rowCount !== 0) {
          if (Date.now() > deadline) throw new Error(`sessions of ${role} opened before ${at} are still there ${ctx.config.cutoverTimeoutMs} ms after they were terminated`);
          await new Promise((r) => setTimeout(r, 50));
        }
        return Number(rows[0]?.n ?? 0);
      });
      ctx.log({ env: target.env, role, sessions: ended[target.env] }, "sessions opened with the previous password ended");
    }
    return done({ endedSessions: ended });
  },
};

export const rotateWorkflow: WorkflowDef<"rotate"> = { kind: "rotate", steps: [pending, set, verify, promote, record, sync, expire] };
