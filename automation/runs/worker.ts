/**
 * Stack-run workers: `concurrency` pg-boss workers on the queue of each region this process
 * serves (`stack-run-<region>`, TENANCY_WORKER_REGIONS; so at most that many updates at once per
 * region; the runs table guarantees never two of one stack), one on the queue of before region
 * routing, a heartbeat per running run (which also carries cancellation requests), a reaper that
 * hands the runs of dead workers to live ones, and this worker's entry in run_workers (which
 * regions are served, for tenancy_runs_unserved).
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { PgBoss } from "pg-boss";
import { crashPoint } from "../crashPoints.ts";
import type { GitWriter } from "../git/writer.ts";
import { withLogContext, type Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { QUEUES, type StackRunJob } from "../queue.ts";
import { JobDispatcher } from "./dispatcher.ts";
import { stackRunQueue } from "./regions.ts";
import { DEFAULT_LEFTOVER_CLI, endLeftoverCli, type CliProcess, type LeftoverCliOptions } from "./cliProcess.ts";
import { maskSecretOutputs } from "./outputs.ts";
import { RunCancelledError, RunTakenOverError, type EngineEvent, type RunContext, type Runner } from "./runner.ts";
import { stateMoveOf, type RunRecord, type RunStore } from "./store.ts";

export interface RunWorkerOptions {
  boss: PgBoss;
  store: RunStore;
  writer: GitWriter;
  runner: Runner;
  log: Logger;
  metrics?: Metrics;
  /** Per region served. */
  concurrency: number;
  /** The regions whose runs this worker takes (TENANCY_WORKER_REGIONS); none: no stack-run work at all. */
  regions: readonly string[];
  heartbeatSeconds: number;
  pollingIntervalSeconds?: number;
  /** Defaults to host:pid:random. */
  workerId?: string;
  /** Reap runs of dead workers (default true). */
  reap?: boolean;
  /** Engine events are written in batches at most this far apart. */
  flushMs?: number;
  /**
   * After a successful `up`, before the run is recorded as succeeded (new tenant schemas brought to
   * the template version: schemaMigrations/newTenants.ts). What it returns is kept in the run's
   * output as `schemas`; a throw fails the run with its message. Runs again when a run is taken over.
   */
  afterUp?: (run: { runId: string; stack: string; workDir: string; commit: string }) => Promise<unknown>;
  /**
   * Pins a run that has no program commit (not a rollout's) to the program in force for its stack
   * and returns it (automation/rollouts/inForce.ts); `head` is the head the run's claim read.
   * Absent: such runs apply the head as it is.
   */
  pinProgram?: (run: { runId: string; stack: string; head: string }) => Promise<string>;
  /** How long a takeover lets a dead attempt's CLI run before interrupting it (default DEFAULT_LEFTOVER_CLI). */
  leftoverCli?: LeftoverCliOptions;
}

interface Active {
  runId: string;
  controller: AbortController;
  done: Promise<void>;
}

export class RunWorker {
  readonly workerId: string;
  private dispatchers: JobDispatcher[] = [];
  /** Set when stop()'s grace ran out: a run that starts after that is interrupted at once. */
  private shuttingDown?: Error;
  private reaper?: NodeJS.Timeout;
  private presence?: NodeJS.Timeout;
  private unlisten?: () => void;
  private active = new Map<string, Active>();
  /**
   * Overlays being removed (treeCache.ts): a run's slot is free once its finish is recorded, and
   * the removal (a directory of links, a thread-pool hop per file operation) goes on meanwhile;
   * stop() waits for them.
   */
  private readonly releasing = new Set<Promise<void>>();

  constructor(private readonly opts: RunWorkerOptions) {
    this.workerId = opts.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  get regions(): readonly string[] {
    return this.opts.regions;
  }

  async start(): Promise<void> {
    const { regions } = this.opts;
    if (regions.length === 0) {
      this.opts.log.info("stack-run workers off (TENANCY_WORKER_REGIONS=none): the regions' runners take the runs");
      return;
    }
    // One queue per region: pg-boss fetches only from the queues named, so a job of a region not
    // served here is never even fetched. The legacy queue holds jobs of runs queued before
    // region routing; RunStore.start moves those of other regions to their queue. Each queue's
    // jobs are fetched in batches of its free slots (dispatcher.ts).
    this.shuttingDown = undefined;
    const queues = [...regions.map((r) => ({ queue: stackRunQueue(r), slots: this.opts.concurrency })), { queue: QUEUES.stackRun, slots: 1 }];
    this.dispatchers = queues.map(
      ({ queue, slots }) =>
        new JobDispatcher({
          boss: this.opts.boss,
          queue,
          slots,
          pollingIntervalSeconds: this.opts.pollingIntervalSeconds ?? 2,
          handle: (jobId, data) => this.handle(jobId, data),
          onError: (err, what) => this.opts.log.error({ err: { message: err.message }, queue }, `stack-run queue: ${what} failed`),
        }),
    );
    for (const d of this.dispatchers) d.start();
    // Jobs committed by this process are fetched at once instead of at the next poll.
    this.unlisten = this.opts.store.onJobsSent(() => {
      for (const d of this.dispatchers) d.notify();
    });
    const present = () =>
      this.opts.store.registerWorker(this.workerId, regions).catch((err: unknown) => this.opts.log.error({ err: { message: (err as Error).message } }, "recording this worker in run_workers failed"));
    await present();
    this.presence = setInterval(() => void present(), this.opts.heartbeatSeconds * 1000);
    this.presence.unref();
    this.opts.log.info({ regions, workerId: this.workerId }, `stack-run workers serve ${regions.join(", ")}`);
    if (this.opts.reap ?? true) {
      const tick = () => {
        this.opts.store
          .reapStale()
          .then((reaped) => {
            for (const r of reaped) {
              withLogContext({ runId: r.id }, () =>
                this.opts.log.warn(
                  { lostAttempts: r.lostAttempts, delaySeconds: r.delaySeconds },
                  r.unclaimedJob
                    ? "queued run's job was fetched by a process that never claimed it (it died); sent again"
                    : r.delaySeconds > 0
                    ? `run's worker stopped sending heartbeats (${r.lostAttempts} attempts lost); another worker takes it over in ${r.delaySeconds}s`
                    : "run's worker stopped sending heartbeats; queued for another worker",
                ),
              );
            }
          })
          .catch((err: unknown) => this.opts.log.error({ err: { message: (err as Error).message } }, "reaping stale runs failed"));
      };
      this.reaper = setInterval(tick, this.opts.heartbeatSeconds * 1000);
      this.reaper.unref();
    }
  }

  /** Stops taking jobs; waits up to graceMs for running updates, then interrupts them. */
  async stop(graceMs = 0): Promise<void> {
    if (this.reaper) clearInterval(this.reaper);
    if (this.presence) clearInterval(this.presence);
    this.unlisten?.();
    const dispatchers = this.dispatchers;
    this.dispatchers = [];
    await Promise.all(dispatchers.map((d) => d.stop()));
    const wasStarted = dispatchers.length > 0;
    // Every job in hand: runs still being claimed are not in `active` yet.
    const inHand = Promise.all(dispatchers.map((d) => d.drain()));
    const all = [...this.active.values()];
    const finished = Promise.all([inHand, ...all.map((a) => a.done)]);
    const timedOut = await Promise.race([finished.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
    if (timedOut) {
      this.shuttingDown = new Error("control plane shutting down");
      for (const a of this.active.values()) a.controller.abort(this.shuttingDown);
      await finished;
    }
    while (this.releasing.size > 0) await Promise.all([...this.releasing]);
    if (wasStarted) await this.opts.store.unregisterWorker(this.workerId).catch((err: unknown) => this.opts.log.warn({ err: { message: (err as Error).message } }, "removing this worker from run_workers failed"));
  }

  get running(): string[] {
    return [...this.active.keys()];
  }

  /** Handles one stack-run job. Failures of the update are recorded on the run, not thrown. */
  async handle(jobId: string, data: StackRunJob): Promise<void> {
    const { store, log } = this.opts;
    // The head is read (a ref file) before the claim, which records it as the run's commit when the
    // run applies the head: the claim and the commit in one round trip (oneTrip.ts).
    const head = data.stacks ? await this.opts.writer.head().catch(() => undefined) : undefined;
    const decision = await store.start(data.runId, jobId, this.workerId, this.opts.runner.kind, this.opts.regions, {
      ...(data.stacks ? { stacks: data.stacks } : {}), ...(head ? { head } : {}),
    });
    if (decision.kind === "skip") {
      withLogContext({ runId: data.runId }, () => log.info({ jobId }, `run job skipped: ${decision.reason}`));
      return;
    }
    const { run, attempt, recovering } = decision;
    const tenants = decision.tenants ?? (await this.tenantsOf(run.changeIds));
    const controller = new AbortController();
    if (this.shuttingDown) controller.abort(this.shuttingDown);
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    this.active.set(run.id, { runId: run.id, controller, done });
    try {
      await withLogContext({ runId: run.id, tenantId: tenants.join(",") || undefined }, () => this.execute(run, attempt, recovering, controller));
    } finally {
      this.active.delete(run.id);
      resolveDone();
    }
  }

  /**
   * Before a takeover touches the stack: a CLI process of an earlier attempt that still runs on
   * this host (its Node process was killed, the CLI was not) is left to end, then interrupted, then
   * killed (endLeftoverCli), so two updates of the stack never run at once. The run's own
   * heartbeat keeps going meanwhile. A CLI recorded on another host cannot be checked from here.
   */
  private async endLeftoverCli(run: RunRecord, signal: AbortSignal): Promise<void> {
    const { log } = this.opts;
    for (const a of run.attemptLog) {
      if (!a.cli || a.attempt >= run.attempts) continue;
      const { pid, host, command } = a.cli;
      const outcome = await endLeftoverCli(a.cli, this.opts.leftoverCli ?? DEFAULT_LEFTOVER_CLI, signal);
      if (outcome === "gone") continue;
      if (outcome === "elsewhere") {
        log.warn({ attempt: a.attempt, pid, host: host.name }, `attempt ${a.attempt} ran its Pulumi CLI (pid ${pid}) on host ${host.name}; a process on another host cannot be checked from here (docs/control-plane.md, "After a crash")`);
      } else {
        log.warn({ attempt: a.attempt, pid, command, outcome }, `the Pulumi CLI of attempt ${a.attempt} (pid ${pid}, ${command}) was still running after its worker died: ${outcome} before this attempt starts`);
      }
    }
  }

  private async tenantsOf(changeIds: readonly string[]): Promise<string[]> {
    if (changeIds.length === 0) return [];
    const { rows } = await this.opts.store.pool.query<{ tenant_id: string }>(
      "SELECT DISTINCT tenant_id FROM changes WHERE id = ANY($1::uuid[]) ORDER BY tenant_id",
      [changeIds],
    );
    return rows.map((r) => r.tenant_id);
  }

  private async execute(run: RunRecord, attempt: number, recovering: boolean, controller: AbortController): Promise<void> {
    const { store, log, runner, writer } = this.opts;
    const { id: runId, stack, operation } = run;
    const started = Date.now();
    let lost = false;
    let cancelled = false;
    let buffer: EngineEvent[] = [];
    let flushing: Promise<void> = Promise.resolve();
    const flush = () => {
      const batch = buffer;
      buffer = [];
      flushing = flushing
        .then(() => store.appendEvents(runId, attempt, batch))
        .catch((err: unknown) => log.error({ err: { message: (err as Error).message } }, "persisting engine events failed"));
      return flushing;
    };
    const flushTimer = setInterval(() => void flush(), this.opts.flushMs ?? 250);
    const beat = setInterval(() => {
      store
        .heartbeat(runId, this.workerId)
        .then((hb) => {
          if (hb.lost && !lost) {
            lost = true;
            log.warn("another worker took this run over; abandoning this attempt");
            controller.abort(new RunTakenOverError("run taken over by another worker"));
          } else if (hb.cancelRequested && !cancelled) {
            cancelled = true;
            log.warn("cancellation requested; cancelling the update");
            controller.abort(new Error("cancelled by request"));
          }
        })
        .catch((err: unknown) => log.error({ err: { message: (err as Error).message } }, "heartbeat failed"));
    }, this.opts.heartbeatSeconds * 1000);

    log.info({ stack, operation, attempt, recovering, runner: runner.kind }, `run started: ${operation} ${stack}`);
    crashPoint("run.started");
    let checkout: Awaited<ReturnType<GitWriter["checkout"]>> | undefined;
    // Each CLI process of this attempt is recorded in order, before a later one.
    let recording: Promise<void> = Promise.resolve();
    const onCliProcess = (p: CliProcess) => {
      recording = recording
        .then(() => store.recordCli(runId, this.workerId, attempt, p))
        .catch((err: unknown) => log.error({ err: { message: (err as Error).message }, pid: p.pid }, "recording the run's Pulumi CLI process failed"));
    };
    try {
      if (recovering) await this.endLeftoverCli(run, controller.signal);
      // A takeover applies the commit the dead attempt was applying: its update may have finished
      // (the runner then records it rather than applying it twice); later commits of the stack
      // have a queued run of their own. A rollout's run applies the rollout's program with the
      // head's fleet files (GitWriter.checkout).
      // The stacks whose config files the CLI may write get copies of their own (GitWriter.checkout).
      const ownStacks = [stack, ...(operation === "move" && typeof run.options.source === "string" ? [run.options.source] : [])];
      // A run that is not a rollout's is pinned to the program in force for its stack
      // (pinProgram), with the fleet files of the head its claim read; a pinned run taken over
      // composes its recorded commit again, which returns that same commit (GitWriter.checkout).
      let program = run.programCommit ?? undefined;
      if (this.opts.pinProgram && !program) {
        program = await this.opts.pinProgram({ runId, stack, head: run.commit ?? (await writer.head()) });
      }
      // Unpinned (no pinProgram): a commit recorded by the claim (the head it read) or by the dead attempt is the one applied.
      const recorded = !program && run.commit ? run.commit : undefined;
      checkout = await writer.checkout(`run-${runId}-${attempt}`, recorded, program, ownStacks, program ? (run.commit ?? undefined) : undefined);
      // Pulumi Deployments clones the remote: a composed commit is pushed there first (GitWriter.publishComposed).
      if (runner.kind === "deployments" && program && !(await writer.repo.isAncestor(checkout.commit, await writer.head()))) {
        await writer.publishComposed(program, checkout.commit);
      }
      if (checkout.commit !== run.commit) await store.setCommit(runId, checkout.commit);
      const ctx: RunContext = {
        runId,
        stack,
        workDir: checkout.dir,
        commit: checkout.commit,
        attempt,
        recovering,
        signal: controller.signal,
        onEvent: (e: EngineEvent) => {
          crashPoint("run.updating");
          buffer.push(e);
        },
        onOutput: () => undefined,
        log,
        onCliProcess,
      };
      const outcome =
        operation === "destroy"
          ? await runner.destroy(ctx, { unprotect: run.options.unprotect === true })
          : operation === "move"
            ? // The run's stack is the destination; the outcome (moved/alreadyMoved/missing) becomes output.summary.
              await runner.moveState(ctx, stateMoveOf(run))
            : operation === "preview"
              ? await runner.preview(ctx)
              : await runner.up(ctx);
      const schemas = operation === "up" && this.opts.afterUp ? await this.opts.afterUp({ runId, stack, workDir: checkout.dir, commit: checkout.commit }) : undefined;
      clearInterval(beat);
      await flush();
      crashPoint("run.finishing");
      const ok = await store.finish(runId, this.workerId, {
        state: "succeeded",
        output: {
          commit: checkout.commit, summary: outcome.summary, outputs: maskSecretOutputs(outcome.outputs), concurrentUpdateRetries: outcome.concurrentUpdateRetries, stdoutTail: outcome.stdoutTail,
          ...(schemas !== undefined ? { schemas } : {}),
        },
      }, run);
      if (ok) this.opts.metrics?.runDuration.observe({ state: "succeeded" }, (Date.now() - started) / 1000);
      log.info({ stack, commit: checkout.commit, retries: outcome.concurrentUpdateRetries }, ok ? `run succeeded: ${operation} ${stack}` : "run finished after another worker took it over");
    } catch (err) {
      clearInterval(beat);
      await flush();
      if (lost) return;
      const message =
        err instanceof RunCancelledError || controller.signal.aborted
          ? `cancelled: ${String((controller.signal.reason as Error | undefined)?.message ?? (err as Error).message)}`
          : (err as Error).message;
      const ok = await store.finish(runId, this.workerId, {
        state: "failed",
        output: { commit: checkout?.commit ?? null },
        error: message.length > 16_000 ? `${message.slice(0, 2_000)}\n...\n${message.slice(-12_000)}` : message,
      }, run);
      if (ok) this.opts.metrics?.runDuration.observe({ state: "failed" }, (Date.now() - started) / 1000);
      log.error({ stack, error: message.split("\n").slice(0, 5).join(" / ") }, `run failed: ${operation} ${stack}`);
    } finally {
      clearInterval(beat);
      clearInterval(flushTimer);
      await flushing;
      await recording;
      if (checkout) {
        const removal: Promise<void> = checkout
          .release()
          .catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, "removing the run's worktree failed"))
          .finally(() => this.releasing.delete(removal));
        this.releasing.add(removal);
      }
    }
  }
}
