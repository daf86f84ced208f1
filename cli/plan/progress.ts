import { Listr } from "listr2";
import type { Io } from "../io.ts";
import type { PlanProgress } from "../../plan/planStacks.ts";

interface Deferred {
  promise: Promise<string>;
  resolve(title: string): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: (t: string) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Progress of a multi-stack plan on stderr: listr2's live task list on a terminal, one line per
 * finished stack otherwise (CI logs).
 */
export function planProgress(stacks: readonly string[], io: Io): { onProgress: (p: PlanProgress) => void; done: Promise<void> } {
  const pending = new Map(stacks.map((s) => [s, deferred()]));
  if (!io.isTty) {
    let finished = 0;
    return {
      onProgress: (p) => {
        if (p.kind === "done") io.err(`[${++finished}/${stacks.length}] ${p.stack}: ${p.resources} resources, ${p.violations} violations`);
        if (p.kind === "failed") io.err(`[${++finished}/${stacks.length}] ${p.stack}: failed: ${p.message}`);
      },
      done: Promise.resolve(),
    };
  }
  const list = new Listr(
    stacks.map((s) => ({
      title: `${s}: waiting`,
      task: async (_ctx: unknown, task: { title: string }) => {
        task.title = `${s}: ${await pending.get(s)!.promise}`;
      },
    })),
    { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false }, registerSignalListeners: false },
  );
  const done = list.run().then(() => undefined, () => undefined);
  return {
    onProgress: (p) => {
      const d = pending.get(p.stack);
      if (!d) return;
      if (p.kind === "done") d.resolve(`${p.resources} resources, ${p.violations} violations`);
      if (p.kind === "failed") d.reject(new Error(p.message));
    },
    done,
  };
}
