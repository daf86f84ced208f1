/**
 * The CLI test double (fakePulumiCli.ts) on a worker thread of its own, handed to the Automation
 * API like FakePulumiCommand. A real Pulumi CLI runs in its own process, so its work (running the
 * program, which loads the whole fleet) never waits on the control plane's event loop nor makes
 * the control plane wait; the in-process double does both. Benchmarks of the control plane's own
 * overhead use this one so that they measure the control plane, not the double.
 */
import { rmSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { SemVer } from "semver";
import { bundleDouble, commandResult, SDK_VERSION, type FakePulumiOptions } from "./fakePulumi.ts";
import type { FromDouble, ToDouble } from "./fakePulumiWorker.ts";

interface Pending {
  resolve: (r: { stdout: string; stderr: string; code: number }) => void;
  reject: (err: Error) => void;
  onOutput?: (data: string) => void;
}

export class FakePulumiThread {
  readonly command = "pulumi (saas-tenancy test double, worker thread)";
  readonly version: SemVer;
  private readonly worker: Worker;
  private readonly bundle: string;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private stopped = false;

  constructor(readonly options: FakePulumiOptions) {
    this.version = new SemVer(options.version ?? SDK_VERSION);
    this.bundle = bundleDouble("fakePulumiWorker.ts", "worker");
    this.worker = new Worker(this.bundle, { workerData: options });
    this.worker.on("message", (m: FromDouble) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === "output") p.onOutput?.(m.data);
      else {
        this.pending.delete(m.id);
        if (m.type === "done") p.resolve(m);
        else p.reject(new Error(`the CLI double's thread failed: ${m.message}`));
      }
    });
    this.worker.on("error", (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  async run(
    args: string[],
    cwd: string,
    _additionalEnv: Record<string, string>,
    onOutput?: (data: string) => void,
    _onError?: (data: string) => void,
    signal?: AbortSignal,
  ): Promise<{ stdout: string; stderr: string; code: number }> {
    if (this.stopped) throw new Error("the CLI double's thread was stopped (dispose)");
    const id = this.next++;
    const answer = new Promise<{ stdout: string; stderr: string; code: number }>((resolve, reject) => this.pending.set(id, { resolve, reject, ...(onOutput ? { onOutput } : {}) }));
    const abort = () => this.worker.postMessage({ type: "abort", id } satisfies ToDouble);
    this.worker.postMessage({ type: "run", id, args, cwd } satisfies ToDouble);
    if (signal?.aborted) abort();
    signal?.addEventListener("abort", abort, { once: true });
    try {
      return commandResult(await answer);
    } finally {
      signal?.removeEventListener("abort", abort);
    }
  }

  /** Stops the thread (commands still running fail) and removes its bundle. */
  async dispose(): Promise<void> {
    this.stopped = true;
    await this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error("the CLI double's thread was stopped"));
    this.pending.clear();
    rmSync(this.bundle, { force: true });
  }
}
