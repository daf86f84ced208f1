/**
 * Ports of the lifecycle workflows: every side effect outside the control-plane database goes
 * through one of these narrow interfaces, so the workflows can be run against the real systems
 * (the control plane's git writer and Automation API runner, AWS) or against test doubles.
 *
 * Each port says which control-plane module satisfies it (docs/lifecycle.md, "Side effects go through ports") and what the tests use.
 * Implementations must be idempotent where the doc says so: a workflow step is re-executed after
 * a crash, so every call it makes may be made twice.
 */
import type { Readable } from "node:stream";
import type pg from "pg";

/** Time, injectable so grace periods and retention can be tested without waiting. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Structured log lines; every line a workflow writes carries its workflow id and tenant. */
export interface Logger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

// --- tenant and stack files ----------------------------------------------------------------------

/** A change to the fleet's files, made by one workflow step. */
export interface FleetChange {
  tenantId: string;
  workflowId: string;
  /** One line: what changes (the commit subject after "tenants: "). */
  summary: string;
  /** Repository-relative path (e.g. `tenants/acme.yaml`) -> new content; null deletes the file. */
  files: Readonly<Record<string, string | null>>;
}

/** The change would leave the fleet invalid; nothing was written. One line per problem. */
export class InvalidChangeError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`the change leaves the fleet invalid: ${problems.join("; ")}`);
  }
}

/**
 * The git working copy holding Pulumi.yaml, tenants/ and stacks/ (TENANCY_REPO_DIR): the single
 * source of truth the stacks are deployed from.
 *
 * Satisfied by the control plane's GitWriter (automation/git/writer.ts) through
 * `adapters/controlPlane.ts` (changes on the main branch, cause `workflow`, the workflow id cited
 * in the commit), and by `adapters/localRepo.ts` (tenantctl without a control plane, and tests:
 * a real git repository in a temp dir).
 */
export interface FleetRepo {
  /** Absolute directory holding Pulumi.yaml; tenants/ and stacks/ are below it. */
  readonly root: string;
  /** A file's text, or undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /**
   * Validates the fleet with the change applied (the tenantctl model) and, only when valid,
   * writes it and records one commit. Returns the commit id, or undefined when the change leaves
   * every file as it is (idempotent: a re-run commits nothing). Throws InvalidChangeError, having
   * written nothing, when the result is invalid.
   */
  commit(change: FleetChange): Promise<string | undefined>;
}

// --- stacks ----------------------------------------------------------------------------------------

/** Who asked for a run: shows in the run record and the logs. */
export interface RunContext {
  workflowId: string;
  tenant: string;
  reason: string;
}

export interface RunOutcome {
  /** The control plane's run id (GET /api/runs/:id), or the test double's. */
  runId: string;
}

/** No value of this type exists at run time: only a deliberate cast can make a ProtectionRelease. */
declare const protectionReleaseBrand: unique symbol;

/**
 * Permission to lift Pulumi `protect` (and RDS deletion protection) on one dedicated stack. Only
 * `authorizeProtectionRelease` in workflows/offboard.ts makes one (by a cast, after re-reading
 * from the database that the grace period is over and a final backup of that environment is
 * recorded); nothing else can construct the type.
 */
export interface ProtectionRelease {
  readonly [protectionReleaseBrand]: true;
  readonly kind: "offboarding";
  readonly stack: string;
  readonly workflowId: string;
  /** The recorded final backup (lifecycle_backups.id) that makes deletion acceptable. */
  readonly backupId: string;
  readonly gracePeriodEndedAt: string;
}

/**
 * Stack updates. Satisfied by the control plane's runner (docs/control-plane.md: Automation API, per-stack
 * serialization through the queue, `up` with the policy pack); `up` resolves when the run has
 * succeeded and rejects when it failed. Both calls are idempotent (an `up` with nothing to change
 * changes nothing; a destroy of a destroyed stack destroys nothing).
 */
export interface StackRunner {
  up(stack: string, ctx: RunContext): Promise<RunOutcome>;
  /**
   * Destroys a stack. Without `release`, protected resources make it fail (Pulumi refuses to
   * delete a protected resource; RDS refuses to delete an instance with deletion protection).
   * With `release`, the implementation first lifts Pulumi `protect` for that stack and that run
   * only: `pulumi state unprotect --all --yes --stack <stack>` through the same PulumiCommand the
   * Automation API uses (the control plane's destroy run with `unprotect`). RDS deletion
   * protection, an AWS-side flag, is turned off by the offboarding workflow beforehand
   * (DatabaseSnapshots.disableDeletionProtection). The program is never changed to drop
   * `protect`, so no other update can lose it.
   */
  destroy(stack: string, ctx: RunContext, release?: ProtectionRelease): Promise<RunOutcome>;
  /**
   * Moves resources' state from one stack to another without touching the cloud (`pulumi state
   * move --source <source> --dest <dest> --yes <urn>...`): the resources keep their cloud
   * identity, only the stack that manages them changes. Children of a listed resource move with
   * it (Pulumi's rule); a moved resource whose parent stays behind is re-parented to the
   * destination's root stack and keeps its URN but for the stack name, so the destination program
   * must claim it by alias (infra/model/handover.ts). Idempotent: URNs no longer in the source but
   * present in the destination (under the renamed URN) are reported as `alreadyMoved`, URNs in
   * neither as `missing`; the implementation never fails on those, the caller decides.
   */
  moveState(move: StateMove, ctx: RunContext): Promise<StateMoveOutcome>;
  /**
   * Holds `stacks` for the workflow (ctx.workflowId) until `release`: no update, destroy or drift
   * check of them starts meanwhile; one that arrives is queued and starts after the release (state
   * moves are not held). Resolves once none of their held runs is still running. Idempotent; the
   * hold outlives a crash of the workflow's process (the retry takes it again, then releases it).
   */
  hold(stacks: readonly string[], ctx: RunContext): Promise<void>;
  /** Releases every hold of the workflow (idempotent). */
  release(ctx: RunContext): Promise<void>;
}

export interface StateMove {
  source: string;
  dest: string;
  /** URNs in the source stack (their children move with them). */
  urns: readonly string[];
}

export interface StateMoveOutcome extends RunOutcome {
  /** Of `urns`: moved by this call. */
  moved: string[];
  /** Of `urns`: not in the source, already in the destination (an earlier call moved them). */
  alreadyMoved: string[];
  /** Of `urns`: in neither stack. */
  missing: string[];
}

// --- databases ---------------------------------------------------------------------------------------

/**
 * Connections to the tenant databases, as the platform's master user (RDS: rds_superuser, not
 * SUPERUSER). Satisfied in production by `adapters/secretsManagerDatabases.ts`, which reads the
 * connection documents the stacks write to the namespaced secrets
 * `<app>/<env>/global/cells/<cell>/database` and `<app>/<env>/tenants/<id>/database/master`
 * (GetSecretValue in the stack's region, TLS verified), or by `adapters/databases.ts` (a JSON
 * file mapping stack names to connection strings; it wins when configured, for operators'
 * overrides). The control plane reaches a cell database through the control-plane CIDR the cell's
 * security group admits; a dedicated one only when the tenant's VPC is peered with the control
 * plane.
 */
export interface DatabaseLocator {
  /** The cell database (`cell`) of stack shared-<env>-<cell>. */
  cell(env: string, cell: string): Promise<pg.ClientConfig>;
  /** The dedicated database (`app`) of stack dedicated-<tenant>-<env>. */
  dedicated(tenant: string, env: string): Promise<pg.ClientConfig>;
}

// --- object storage ----------------------------------------------------------------------------------

export interface StoredObject {
  /** Where it is, e.g. `s3://<cell bucket>/backups/tenants/acme/...` (or `file://` for the stand-in). */
  location: string;
  bytes: number;
  sha256: string;
}

/**
 * The cell's bucket (versioned, encrypted with the cell key). Satisfied in production by
 * `adapters/s3Backups.ts`; tests use `adapters/directoryBucket.ts`, a local directory standing in
 * for the bucket; without either, `adapters/unavailable.ts`, whose every call (check included)
 * fails naming what to configure.
 */
export interface BackupStore {
  /**
   * Preflight, before a workflow changes anything that a missing store would leave half done
   * (offboarding revokes LOGIN for the final dump). Resolves with one line saying where the
   * cell's final dumps go; rejects with a PermanentError saying what to configure when they have
   * nowhere to go, or with a retryable error when that cannot be told now. Reads only: may be
   * called any number of times.
   */
  check(bucket: CellBucketRef): Promise<string>;
  /** Writes the object (overwriting an object of the same key) and returns its size and digest. */
  put(bucket: CellBucketRef, key: string, body: Readable): Promise<StoredObject>;
  /** The object's size and digest, or undefined when absent. */
  stat(bucket: CellBucketRef, key: string): Promise<StoredObject | undefined>;
  /**
   * Copies every current object version of `source` (delete markers and noncurrent versions are
   * not copied) to `dest` under `destPrefix` (which must be under `backups/`), each to
   * `destPrefix + "objects/" + <its key below the source prefix>`, then writes the manifest
   * `destPrefix + "manifest.json"` (ObjectCopyManifest) and returns it. Same region only: the
   * source's region must be the destination cell's (tenant data stays in its region). Idempotent:
   * run again it copies again and writes the manifest of that run.
   */
  copyObjects(source: TenantObjects, dest: CellBucketRef, destPrefix: string): Promise<ObjectCopy>;
  /**
   * Deletes every object version and delete marker of `source` (the whole prefix of a pooled
   * tenant), but first reads the manifest `copy` names, checks its digest, and refuses with
   * ChangedSinceCopyError, deleting nothing, while a current version there is not in the manifest
   * (written after the copy). With `verifyOnly` it checks and deletes nothing. Idempotent: what is
   * already gone is not an error (a second call deletes 0).
   */
  purgeObjects(source: TenantObjects, copy: RecordedObjectCopy, opts?: { verifyOnly?: boolean }): Promise<ObjectPurge>;
}

/**
 * A tenant's objects: its own bucket (dedicated, in its region) or its prefix `tenants/<id>/` of a
 * cell bucket (pooled). The adapters derive bucket names from the platform (infra/model/naming.ts).
 */
export type TenantObjects =
  | { kind: "tenant-bucket"; env: string; tenant: string; region: string }
  | { kind: "cell-prefix"; env: string; cell: string; tenant: string };

/** One current object version the copy holds. */
export interface CopiedObject {
  key: string;
  /** S3's version id (`null` for an object written before versioning, or by the directory stand-in). */
  versionId: string;
  bytes: number;
  etag: string;
  /** The copy's key in the destination bucket. */
  copyKey: string;
}

/** The manifest `copyObjects` writes (JSON): what was copied from where. */
export interface ObjectCopyManifest {
  /** `s3://<bucket>/<prefix>` (or `file://...` for the stand-in). */
  source: string;
  objects: CopiedObject[];
}

export interface ObjectCopy {
  /** The manifest object (its location, size and digest: what the backup record holds). */
  manifest: StoredObject;
  /** Where the copies are: `s3://<bucket>/<destPrefix>objects/`. */
  location: string;
  objects: number;
  bytes: number;
}

/** A recorded copy: the manifest's place and the digest recorded with it. */
export interface RecordedObjectCopy {
  dest: CellBucketRef;
  manifestKey: string;
  sha256: string;
}

export interface ObjectPurge {
  /** Object versions deleted by this call. */
  versions: number;
  /** Delete markers deleted by this call. */
  deleteMarkers: number;
}

/** A current object version of the source is not in the copy's manifest: nothing was deleted. */
export class ChangedSinceCopyError extends Error {
  constructor(readonly changed: readonly string[], source: string, manifest: string) {
    super(`${source} holds ${changed.length} current object version(s) that the recorded copy ${manifest} does not (written after it): ${changed.slice(0, 5).join(", ")}${changed.length > 5 ? ", ..." : ""}; nothing was deleted; take the backup again (re-run offboard.backup) or find who writes there`);
  }
}

export interface CellBucketRef {
  env: string;
  cell: string;
}

// --- AWS -------------------------------------------------------------------------------------------

export type SnapshotState = "creating" | "available" | "failed" | "missing";

/**
 * RDS operations of the offboarding of a dedicated tenant. Satisfied by `adapters/rdsSnapshots.ts`
 * (or `adapters/unavailable.ts`, which refuses naming the setting); tests use a fake that records
 * the requests: no snapshot is taken and no instance is modified in tests.
 */
export interface DatabaseSnapshots {
  /**
   * Preflight (see BackupStore.check): resolves with one line saying how the final snapshot of
   * the instance will be taken; rejects with a PermanentError saying what to configure when it
   * cannot be. Reads only.
   */
  check(dbInstanceIdentifier: string, region: string): Promise<string>;
  /**
   * Requests the final manual snapshot `snapshotId` of the instance; a second request for the
   * same id does nothing. The snapshot kept must stay readable should the tenant's KMS key go
   * (the destroy retains the key, but a person may schedule its deletion later): the adapter creates it (CreateDBSnapshot)
   * and copies it under the platform's backup key (CopyDBSnapshot with KmsKeyId), and reports
   * `available` only when that copy is.
   */
  request(dbInstanceIdentifier: string, snapshotId: string, region: string): Promise<void>;
  state(snapshotId: string, region: string): Promise<SnapshotState>;
  /**
   * Turns RDS deletion protection off (ModifyDBInstance DeletionProtection=false) so the destroy
   * can delete a prod instance. Takes the release as proof that the workflow's checks passed.
   */
  disableDeletionProtection(dbInstanceIdentifier: string, region: string, release: ProtectionRelease): Promise<void>;
}

export interface SecretDeletion {
  name: string;
  /** `scheduled` by this call, `already-scheduled` (e.g. by Pulumi deleting the resource), or `absent`. */
  state: "scheduled" | "already-scheduled" | "absent";
  /** When AWS deletes it for good, when known. */
  deletionDate?: string;
}

/**
 * Secrets Manager. Satisfied by `adapters/secretsManager.ts` (DeleteSecret with
 * RecoveryWindowInDays; GetSecretValue, PutSecretValue and UpdateSecretVersionStage for rotation),
 * or `adapters/unavailable.ts`, which refuses naming the setting. Tests use a fake that records the
 * calls and models the staging labels.
 */
export interface SecretsManager {
  /**
   * Preflight (see BackupStore.check): resolves with one line saying where secrets of `region`
   * will be scheduled for deletion; rejects with a PermanentError saying what to configure when
   * they cannot be. Reads only.
   */
  check(region: string): Promise<string>;
  /** Idempotent: a secret already scheduled for deletion, or gone, is reported, not an error. */
  scheduleDeletion(name: string, region: string, recoveryWindowDays: number): Promise<SecretDeletion>;
  // --- versions (credential rotation, workflows/rotate.ts) ---
  /** The version labelled AWSCURRENT (GetSecretValue). Rejects naming the secret when it has none. */
  current(name: string, region: string): Promise<SecretVersionText>;
  /** The version with this id (GetSecretValue VersionId), or undefined when there is none. */
  version(name: string, region: string, versionId: string): Promise<SecretVersionText | undefined>;
  /**
   * Writes a new version labelled AWSPENDING only (PutSecretValue, ClientRequestToken = versionId):
   * AWSCURRENT stays where it is, so readers keep the working document. AWS's idempotency: a repeat
   * with the same id and text does nothing; the same id with another text is refused.
   */
  putPending(name: string, region: string, versionId: string, secretString: string): Promise<void>;
  /**
   * Moves AWSCURRENT to `versionId` (UpdateSecretVersionStage; AWS labels the version it leaves
   * AWSPREVIOUS) and removes AWSPENDING from it. Idempotent: a version already current is left so.
   * Returns the version that was current before (null when `versionId` already was).
   */
  promote(name: string, region: string, versionId: string): Promise<{ previousVersionId: string | null }>;
}

/** One version of a secret. `secretString` is a credential: never logged, never recorded. */
export interface SecretVersionText {
  versionId: string;
  stages: string[];
  secretString: string;
}

/** Everything a workflow may touch outside the control-plane database. */
export interface LifecyclePorts {
  clock: Clock;
  log: Logger;
  repo: FleetRepo;
  runner: StackRunner;
  databases: DatabaseLocator;
  backups: BackupStore;
  snapshots: DatabaseSnapshots;
  secrets: SecretsManager;
}
