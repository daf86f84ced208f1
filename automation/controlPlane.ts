/**
 * Composition root: wires the database, queues, git writer, billing reconciler, run workers,
 * lifecycle worker and HTTP server from a ControlPlaneConfig. `main.ts` starts everything; tests and the lifecycle
 * workflows start the parts they need (e.g. only the run workers in a separate process).
 */
import { readFileSync } from "node:fs";
import type { PgBoss } from "pg-boss";
import type { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { loadFleet } from "../infra/model/fleet.ts";
import { formatProblem } from "../infra/model/problems.ts";
import { BillingReconciler } from "./billing/reconcile.ts";
import { CellOpener } from "./cells/opener.ts";
import { CellReadiness } from "./cells/readiness.ts";
import type { ControlPlaneConfig } from "./config.ts";
import { openDatabase, type Database } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";
import { GitHubClient } from "./git/github.ts";
import { GitWriter } from "./git/writer.ts";
import { ensureWorkingCopy } from "./git/workingCopy.ts";
import { ApiKeyRing } from "./http/keyRing.ts";
import { RunEventHub } from "./http/runEvents.ts";
import { TenantCosts } from "./cost/tenantCosts.ts";
import { FleetCache } from "./git/fleetCache.ts";
import { buildMetricsServer, buildServer } from "./http/server.ts";
import { createLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { startBoss } from "./queue.ts";
import { DeploymentsRunner, LocalAutomationRunner, type Runner } from "./runs/runner.ts";
import { RunStore } from "./runs/store.ts";
import { RolloutEngine } from "./rollouts/engine.ts";
import { pinRunProgram, programsInUse } from "./rollouts/inForce.ts";
import { runStorePort } from "./rollouts/runPort.ts";
import { RolloutService } from "./rollouts/service.ts";
import { Ticker } from "./ticker.ts";
import { DriftScheduler } from "./drift/scheduler.ts";
import { RunWorker } from "./runs/worker.ts";
import type { LeftoverCliOptions } from "./runs/cliProcess.ts";
import { DbMigrationEngine } from "./schemaMigrations/fleetEngine.ts";
import { NewSchemaInitializer } from "./schemaMigrations/newTenants.ts";
import { locatorRunPort, SchemaMigrationService, tenantsInMotion } from "./schemaMigrations/service.ts";
import { stackRegion } from "./runs/regions.ts";
import { GitWriterFleetRepo, RunStoreStackRunner } from "./lifecycle/adapters/controlPlane.ts";
import { JsonFileDatabaseLocator } from "./lifecycle/adapters/databases.ts";
import { SecretsManagerDatabaseLocator, stackFileRegions } from "./lifecycle/adapters/secretsManagerDatabases.ts";
import { DirectoryBucketStore } from "./lifecycle/adapters/directoryBucket.ts";
import { RdsSnapshots } from "./lifecycle/adapters/rdsSnapshots.ts";
import { S3BackupStore } from "./lifecycle/adapters/s3Backups.ts";
import { AwsSecretsManager } from "./lifecycle/adapters/secretsManager.ts";
import { unavailableBackupStore, unavailableDatabases, unavailableSecrets, unavailableSnapshots } from "./lifecycle/adapters/unavailable.ts";
import { loadPlatform } from "../infra/model/platform.ts";
import { systemClock, type DatabaseLocator, type LifecyclePorts } from "./lifecycle/ports.ts";
import { LifecycleService } from "./lifecycle/service.ts";
import { LIFECYCLE_WORKFLOWS } from "./lifecycle/workflows/registry.ts";
import { LifecycleWorker } from "./lifecycle/engine/worker.ts";

export interface ControlPlaneDeps {
  log?: Logger;
  /** Replaces the runner chosen by config (TENANCY_RUNNER). */
  runner?: Runner;
  /** The CLI for the local runner (tests pass a PulumiCommand implementation). */
  pulumiCommand?: PulumiCommand;
  /** pg-boss polling of the workers, seconds (default 2; tests use less). */
  pollingIntervalSeconds?: number;
  /** Reconcile jobs per batch (default 50). */
  reconcileBatchSize?: number;
  /** Replaces the region of a stack read from the working copy (benchmarks with made-up stack names). */
  regionOf?: (stack: string) => string;
  /** How long a run's takeover lets a dead attempt's Pulumi CLI run (default DEFAULT_LEFTOVER_CLI; tests use less). */
  leftoverCli?: LeftoverCliOptions;
  /** false: runs outside rollouts apply the head as it is instead of their stack's program in force (tests' negative controls). */
  pinPrograms?: boolean;
}

export interface StartOptions {
  http?: boolean;
  reconciler?: boolean;
  runs?: boolean;
  /** The lifecycle worker; only when the config enables it (TENANCY_LIFECYCLE_WORKER). */
  lifecycle?: boolean;
}

/** The lifecycle workflows as the control plane runs them (config.lifecycle set). */
export interface ControlPlaneLifecycle {
  service: LifecycleService;
  worker: LifecycleWorker;
  ports: LifecyclePorts;
  /** Aborts the runner's waits for stack runs when stopping takes longer than the grace period. */
  abort: AbortController;
}

export class ControlPlane {
  readonly reconciler: BillingReconciler;
  readonly hub: RunEventHub;
  /** The API keys in force; reloaded on SIGHUP and when TENANCY_API_KEYS changes while the HTTP server runs. */
  readonly keys: ApiKeyRing;
  readonly runWorker: RunWorker;
  readonly rollouts: RolloutService;
  readonly rolloutWorker: Ticker;
  /** Pokes the rollout worker when the current wave's bake time ends. */
  private bakeTimer: NodeJS.Timeout | undefined;
  /** Scheduled drift checks; undefined when TENANCY_DRIFT_PERIOD_HOURS is 0. */
  readonly drift: DriftScheduler | undefined;
  /** Tenant schema migrations through the rings; undefined without the tenant databases (the lifecycle settings). */
  readonly schemaMigrations: SchemaMigrationService | undefined;
  private readonly schemaMigrationTicker: Ticker | undefined;
  /** Brings a stack's new tenant schemas to the template version after its up; undefined without the tenant databases. */
  readonly newSchemas: NewSchemaInitializer | undefined;
  private readonly driftTicker: Ticker | undefined;
  /** Removes `opening: true` from cells whose first up succeeded (docs/cells.md); ticks with the billing reconciler. */
  readonly cellReadiness: CellReadiness;
  private readonly cellReadinessTicker: Ticker;
  readonly server: ReturnType<typeof buildServer>;
  /** The fleet of the working copy, loaded once per commit, for the HTTP API. */
  readonly fleet: FleetCache;
  /** Tenants' monthly costs for the HTTP API (priced in a plan worker process, kept per loaded fleet). */
  readonly costs: TenantCosts;
  /** The /metrics listener (config.http.metrics); undefined when /metrics is on the main port. */
  readonly metricsServer: ReturnType<typeof buildMetricsServer> | undefined;
  /** Undefined when the lifecycle worker is off (config.lifecycle absent). */
  readonly lifecycle: ControlPlaneLifecycle | undefined;
  private started: StartOptions = {};

  private constructor(
    readonly config: ControlPlaneConfig,
    readonly log: Logger,
    readonly db: Database,
    readonly boss: PgBoss,
    readonly runs: RunStore,
    readonly writer: GitWriter,
    readonly runner: Runner,
    readonly metrics: Metrics,
    deps: ControlPlaneDeps,
  ) {
    const cellOpener = new CellOpener({ runs, log });
    this.reconciler = new BillingReconciler({
      pool: db.pool,
      boss,
      writer,
      cells: cellOpener,
      priceTiers: config.priceTiers,
      graceHours: config.unpaidGraceHours,
      log,
      metrics,
      batchSize: deps.reconcileBatchSize ?? 50,
      pollingIntervalSeconds: deps.pollingIntervalSeconds ?? 2,
    });
    this.runWorker = new RunWorker({
      boss,
      store: runs,
      writer,
      runner,
      log,
      metrics,
      concurrency: config.maxParallelRuns,
      regions: config.workerRegions ?? loadPlatform(config.repoDir).regions,
      heartbeatSeconds: config.heartbeatSeconds,
      pollingIntervalSeconds: deps.pollingIntervalSeconds ?? 2,
      ...(deps.leftoverCli ? { leftoverCli: deps.leftoverCli } : {}),
      // A run outside a rollout applies the program in force for its stack (docs/rollouts.md).
      ...(deps.pinPrograms === false ? {} : { pinProgram: (run: { runId: string; stack: string; head: string }) => pinRunProgram(db.pool, run) }),
      // New tenant schemas start at the template version; needs the tenant databases (lifecycle settings).
      afterUp: (run) => this.newSchemas?.afterUp(run) ?? Promise.resolve(undefined),
    });
    const rolloutEngine = new RolloutEngine(db.pool, runStorePort(runs), {
      onHalt: (r) => {
        metrics.rolloutHalts.inc();
        log.error({ rolloutId: r.id, reason: r.haltReason }, `rollout halted: ${r.name}; nothing more runs until a person resumes or aborts it`);
      },
      // A bake's end is announced by no run: tick when it is due, not at the next interval.
      onBaking: (ms) => {
        clearTimeout(this.bakeTimer);
        this.bakeTimer = setTimeout(() => this.rolloutWorker.poke(), Math.ceil(ms) + 5).unref();
      },
      // A rollout's end changes the programs in force: the refs keeping the composed commits of
      // programs no stack runs any more (and no run or rollout uses) go (GitWriter.releaseComposed).
      onEnd: (r) => {
        void programsInUse(db.pool)
          .then((needed) => writer.releaseComposed(needed))
          .catch((err: unknown) => log.warn({ rolloutId: r.id, err: { message: (err as Error).message } }, "dropping the refs of composed commits no longer in force failed; the next rollout's end tries again"));
      },
    });
    this.rollouts = new RolloutService(rolloutEngine, config.repoDir, (commit) => writer.commitOnBranch(commit));
    const tickMs = (deps.pollingIntervalSeconds ?? 2) * 1000;
    // One fleet of the working copy, loaded again only when HEAD or a fleet file changed: the API,
    // the console, drift scheduling and schema migrations read it (automation/git/fleetCache.ts).
    this.fleet = new FleetCache(config.repoDir);
    this.rolloutWorker = new Ticker("rollout tick", () => rolloutEngine.tick(), log, { intervalMs: tickMs });
    // A run that ends frees a slot of its wave: record it and start the next stack now, not at the
    // next interval (runs ended in another process are seen at the interval). Not while no rollout
    // is active or waiting (RolloutEngine.mayBeActive): the interval's tick looks for one.
    runs.onRunFinished(() => {
      if (rolloutEngine.mayBeActive) this.rolloutWorker.poke();
    });
    if (config.drift) {
      // The fleet cache loads the files again only when they changed: a tick of a fleet of
      // thousands of tenants must not parse every file (it ticks every few seconds).
      const drift = new DriftScheduler(db.pool, runs, async () => fleetStacks(await this.fleet.get()), config.drift);
      this.drift = drift;
      this.driftTicker = new Ticker("drift scheduling", () => drift.tick(), log, { intervalMs: Math.max(tickMs, 1000) });
    } else {
      this.drift = undefined;
      this.driftTicker = undefined;
    }
    this.cellReadiness = new CellReadiness({ pool: db.pool, boss, writer, opener: cellOpener, repoDir: config.repoDir, log });
    this.cellReadinessTicker = new Ticker("cell readiness", () => this.cellReadiness.tick(), log, { intervalMs: Math.max(tickMs, 1000) });
    metrics.attachDrift(db.pool);
    metrics.attachRollouts(db.pool);
    this.hub = new RunEventHub(db.url, log);
    this.lifecycle = config.lifecycle ? makeLifecycle(config, log, db, runs, writer) : undefined;
    if (this.lifecycle) {
      // The tenant databases are the lifecycle's (master-user connections per stack).
      const databases = this.lifecycle.ports.databases;
      const engine = new DbMigrationEngine(db.pool, locatorRunPort(this.fleet, databases, tenantsInMotion(this.fleet)), {
        inMotionKinds: LIFECYCLE_WORKFLOWS.filter((d) => d.schema !== undefined).map((d) => d.kind),
        onSchema: (action, r) => metrics.schemaMigrations.inc({ action, outcome: r.ok ? "succeeded" : "failed" }),
        onSkip: (action) => metrics.schemaMigrations.inc({ action, outcome: "skipped" }),
        onHalt: (m) => {
          metrics.schemaMigrationHalts.inc();
          log.error({ migrationId: m.id, reason: m.haltReason }, "schema migration halted; nothing more runs until a person resumes or aborts it");
        },
      });
      this.schemaMigrations = new SchemaMigrationService(engine, this.fleet, databases);
      this.newSchemas = new NewSchemaInitializer({ pool: db.pool, databases, log });
      this.schemaMigrationTicker = new Ticker("schema migrations", () => engine.tick(), log, { intervalMs: Math.max(tickMs, 1000) });
      metrics.attachSchemaMigrations(db.pool);
    } else {
      this.schemaMigrations = undefined;
      this.schemaMigrationTicker = undefined;
      this.newSchemas = undefined;
    }
    this.metricsServer = config.http.metrics ? buildMetricsServer(metrics, log) : undefined;
    this.keys = new ApiKeyRing(config.apiKeys, { log, ...(config.apiKeysFile ? { file: config.apiKeysFile } : {}) });
    this.costs = new TenantCosts();
    this.server = buildServer({
      fleet: this.fleet,
      costs: this.costs,
      stripeWebhookSecret: config.stripeWebhookSecret,
      keys: this.keys,
      http: config.http,
      unpaidGraceHours: config.unpaidGraceHours,
      repoDir: config.repoDir,
      pool: db.pool,
      boss,
      writer,
      runs,
      reconciler: this.reconciler,
      hub: this.hub,
      metrics,
      log,
      ...(this.lifecycle ? { workflows: this.lifecycle.service.engine, lifecycle: this.lifecycle.service } : {}),
      rollouts: this.rollouts,
      ...(this.drift ? { drift: this.drift } : {}),
      ...(this.schemaMigrations ? { schemaMigrations: this.schemaMigrations } : {}),
    });
  }

  static async create(config: ControlPlaneConfig, deps: ControlPlaneDeps = {}): Promise<ControlPlane> {
    const log = deps.log ?? createLogger(config.logLevel);
    if (config.cloneWorkingCopyFrom) {
      const wc = await ensureWorkingCopy(config.cloneWorkingCopyFrom, config.repoDir);
      if (wc.created) {
        log.warn(
          { repoDir: config.repoDir, from: config.cloneWorkingCopyFrom, branch: wc.branch, commit: wc.commit },
          "TENANCY_REPO_DIR not set: cloned the project's committed branch as this control plane's own working copy; it commits there and pushes nowhere (set TENANCY_REPO_DIR and TENANCY_GIT_REMOTE for a fleet repository)",
        );
      }
    }
    const db = await openDatabase({ ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}), dataDir: config.dataDir, log });
    try {
      const applied = await migrate(db.pool);
      if (applied.length > 0) log.info({ applied }, "database migrated");
      const platform = loadPlatform(config.repoDir);
      const boss = await startBoss(db.url, { runExpireHours: config.runExpireHours, regions: platform.regions }, log);
      const runs = new RunStore(db.pool, boss, {
        runExpireHours: config.runExpireHours,
        heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
        regions: platform.regions,
        // The working copy as it is now: a run is queued after its change is committed there.
        regionOf: deps.regionOf ?? ((stack) => stackRegion(config.repoDir, platform, stack)),
        // The claim records the program in force (the worker's pinProgram below then has nothing to do).
        ...(deps.pinPrograms === false ? {} : { pinPrograms: true }),
      });
      // Runs queued before region routing whose stack name does not say their region (migration 004).
      const backfill = await runs.backfillRegions();
      if (backfill.filled > 0) log.info({ filled: backfill.filled }, "runs queued before region routing got their stack's region");
      if (backfill.unknown.length > 0) log.warn({ stacks: backfill.unknown }, "runs of stacks whose region no file says stay unrouted (tenancy_runs_unserved{region=\"unknown\"})");
      const writer = new GitWriter({
        repoDir: config.repoDir,
        dataDir: config.dataDir,
        ...(config.runDir ? { runDir: config.runDir } : {}),
        pool: db.pool,
        runs,
        log,
        identity: config.git.author,
        ...(config.git.remote ? { remote: config.git.remote } : {}),
        ...(config.git.branch ? { branch: config.git.branch } : {}),
        ...(config.github ? { github: new GitHubClient(config.github) } : {}),
      });
      const branch = await writer.init();
      await writer.recoverAtStart();
      const { problems } = loadFleet({ projectDir: config.repoDir });
      if (problems.length > 0) {
        log.error({ problems: problems.map(formatProblem) }, `tenant files on ${branch} do not validate; changes are refused until they do`);
      }
      const runner = deps.runner ?? makeRunner(config, deps.pulumiCommand);
      const metrics = new Metrics();
      metrics.attach(runs, db.pool, platform.regions);
      log.info({ repoDir: config.repoDir, branch, runner: runner.kind, database: db.embedded ? "embedded" : "DATABASE_URL" }, "control plane ready");
      return new ControlPlane(config, log, db, boss, runs, writer, runner, metrics, deps);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  async start(opts: StartOptions = { http: true, reconciler: true, runs: true, lifecycle: true }): Promise<void> {
    if (opts.reconciler) {
      await this.reconciler.start();
      this.cellReadinessTicker.start();
    }
    if (opts.runs) {
      await this.runWorker.start();
      // Rollouts and drift checks start stack runs: the processes that run stacks drive them.
      this.rolloutWorker.start();
      this.driftTicker?.start();
      this.schemaMigrationTicker?.start();
    }
    if (opts.lifecycle) {
      if (this.lifecycle) {
        this.lifecycle.worker.start();
        this.log.info(
          {
            intervalSeconds: this.config.lifecycle!.intervalSeconds,
            databases: this.config.lifecycle!.databasesFile
              ? `file ${this.config.lifecycle!.databasesFile}`
              : this.config.lifecycle!.aws
                ? "Secrets Manager (the stacks' connection documents)"
                : "none (TENANCY_LIFECYCLE_DATABASES unset, TENANCY_LIFECYCLE_AWS off): steps that connect to a tenant database fail naming them",
            backups: this.config.lifecycle!.aws ? "S3 (cell buckets)" : this.config.lifecycle!.backupDir ? `directory ${this.config.lifecycle!.backupDir} (not S3)` : "none (TENANCY_LIFECYCLE_AWS off, TENANCY_LIFECYCLE_BACKUP_DIR unset)",
            aws: this.config.lifecycle!.aws ? { backupKmsKey: this.config.lifecycle!.aws.backupKmsKey } : "off",
          },
          this.config.lifecycle!.aws
            ? "lifecycle worker started with the AWS adapters (S3, RDS, Secrets Manager)"
            : "lifecycle worker started; offboardings stop at their preflight (Secrets Manager, RDS snapshots) until TENANCY_LIFECYCLE_AWS is on",
        );
      } else {
        this.log.warn({}, "lifecycle worker off (TENANCY_LIFECYCLE_WORKER=off): workflows recorded by tenantctl stay pending");
      }
    }
    if (opts.http) {
      await this.hub.start();
      this.keys.watch();
      await this.server.listen({ port: this.config.port, host: this.config.host });
      if (this.metricsServer && this.config.http.metrics) {
        await this.metricsServer.listen({ port: this.config.http.metrics.port, host: this.config.http.metrics.host });
      }
    }
    this.started = { ...this.started, ...opts };
  }

  /** The port the API listens on once started: PORT, or the one the system chose for PORT=0. */
  listeningPort(): number | undefined {
    const address = this.started.http ? this.server.server.address() : null;
    return address && typeof address === "object" ? address.port : undefined;
  }

  /** Stops in reverse order; running updates get `graceMs` to finish before they are interrupted. */
  async stop(graceMs = this.config.shutdownGraceSeconds * 1000): Promise<void> {
    if (this.started.http) {
      this.keys.close();
      await this.metricsServer?.close().catch(() => undefined);
      await this.server.close().catch(() => undefined);
      await this.hub.stop();
      // A cost being priced finishes (its worker process exits with it): seconds at most.
      await this.costs.idle();
    }
    if (this.started.reconciler) {
      await this.cellReadinessTicker.stop();
      await this.reconciler.stop();
    }
    // Before the run workers: a workflow step waits for stack runs. It gets the grace period to
    // finish; then its waits are aborted (the step fails and is retried after the restart).
    if (this.started.lifecycle && this.lifecycle) {
      const stopped = this.lifecycle.worker.stop();
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([stopped.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
      clearTimeout(timer);
      if (late) {
        this.log.warn({ graceMs }, "a lifecycle step is still waiting for a stack run; interrupting it (it is retried after the restart)");
        this.lifecycle.abort.abort();
        await stopped;
      }
    }
    if (this.started.runs) {
      clearTimeout(this.bakeTimer);
      await this.rolloutWorker.stop();
      await this.driftTicker?.stop();
      await this.schemaMigrationTicker?.stop();
      await this.runWorker.stop(graceMs);
      this.writer.closeTrees();
    }
    await this.boss.stop({ graceful: true, close: true, timeout: 10_000 }).catch(() => undefined);
    this.log.info("workers and queue stopped");
    await this.db.close();
    this.log.info(this.db.embedded ? "database closed; embedded PostgreSQL stopped" : "database closed");
  }
}

/**
 * The lifecycle ports on this control plane's modules: its GitWriter, its run queue, the
 * databases (lifecycleDatabases), and the AWS adapters (S3, RDS snapshots, Secrets Manager) only
 * when TENANCY_LIFECYCLE_AWS is on; otherwise the directory bucket stand-in when configured and
 * ports whose every call fails naming what is missing, so nothing touches AWS unless asked to.
 */
function makeLifecycle(config: ControlPlaneConfig, log: Logger, db: Database, runs: RunStore, writer: GitWriter): ControlPlaneLifecycle {
  const settings = config.lifecycle!;
  const abort = new AbortController();
  const ports: LifecyclePorts = {
    clock: systemClock,
    log,
    repo: new GitWriterFleetRepo(writer),
    // A run may wait behind others on its stack: as long as a run's job may live, and a bit.
    runner: new RunStoreStackRunner(runs, { timeoutMs: (config.runExpireHours + 1) * 3600 * 1000, pollMs: 500, signal: abort.signal }),
    databases: lifecycleDatabases(config),
    ...lifecycleAwsPorts(config),
  };
  const service = new LifecycleService(db.pool, ports, settings.workflows);
  const worker = new LifecycleWorker(service, config.repoDir, { intervalMs: settings.intervalSeconds * 1000, log });
  return { service, worker, ports, abort };
}

/**
 * Where the master-user connections come from: the TENANCY_LIFECYCLE_DATABASES file when given
 * (with TENANCY_LIFECYCLE_AWS on too: an operator's override wins); else, with
 * TENANCY_LIFECYCLE_AWS on, the connection documents the stacks keep in Secrets Manager, in each
 * stack's region, verified against the TENANCY_LIFECYCLE_DB_CA_FILE bundle when given; with
 * neither, a locator whose every call fails naming those settings (the worker runs, steps that
 * need a database fail at once).
 */
export function lifecycleDatabases(config: ControlPlaneConfig): DatabaseLocator {
  const settings = config.lifecycle!;
  if (settings.databasesFile) return new JsonFileDatabaseLocator(settings.databasesFile);
  if (!settings.aws) return unavailableDatabases();
  const platform = loadPlatform(config.repoDir);
  return new SecretsManagerDatabaseLocator({
    app: platform.appName,
    regionOf: stackFileRegions(config.repoDir),
    ...(settings.dbCaFile ? { ca: readFileSync(settings.dbCaFile, "utf8") } : {}),
  });
}

/** The BackupStore, DatabaseSnapshots and SecretsManager ports the config asks for. */
export function lifecycleAwsPorts(config: ControlPlaneConfig): Pick<LifecyclePorts, "backups" | "snapshots" | "secrets"> {
  const settings = config.lifecycle!;
  if (settings.aws) {
    const platform = loadPlatform(config.repoDir);
    return {
      backups: new S3BackupStore({ app: platform.appName, accountId: platform.awsAccountId, regions: platform.regions }),
      snapshots: new RdsSnapshots({ backupKmsKey: settings.aws.backupKmsKey, waitSeconds: settings.aws.snapshotWaitSeconds }),
      secrets: new AwsSecretsManager(),
    };
  }
  return {
    backups: settings.backupDir ? new DirectoryBucketStore(settings.backupDir) : unavailableBackupStore(),
    snapshots: unavailableSnapshots(),
    secrets: unavailableSecrets(),
  };
}

export function makeRunner(config: ControlPlaneConfig, pulumiCommand?: PulumiCommand): Runner {
  const retry = { retries: config.updateRetries, baseMs: config.updateRetryBaseMs };
  if (config.runner === "deployments" && config.deployments) return new DeploymentsRunner({ ...retry, settings: config.deployments });
  return new LocalAutomationRunner({
    ...retry,
    ...(pulumiCommand ? { pulumiCommand } : {}),
    ...(config.pulumiRoot ? { pulumiRoot: config.pulumiRoot } : {}),
  });
}

/** The cell and dedicated stacks of the working copy (drift checks follow the fleet as it changes). */
function fleetStacks({ fleet }: { fleet?: { stacks: ReadonlyMap<string, unknown> } }): string[] {
  return fleet ? [...fleet.stacks.keys()] : [];
}
