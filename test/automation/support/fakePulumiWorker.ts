/**
 * Entry of the CLI test double in a worker thread (fakePulumiThread.ts): answers `run` messages
 * with runFakePulumi, on this thread's own event loop, as a real CLI runs in a process of its own.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runFakePulumi, type FakePulumiOptions } from "./fakePulumiCli.ts";

export type ToDouble = { type: "run"; id: number; args: string[]; cwd: string } | { type: "abort"; id: number };
export type FromDouble = { type: "output"; id: number; data: string } | { type: "done"; id: number; stdout: string; stderr: string; code: number } | { type: "crashed"; id: number; message: string };

const options = workerData as FakePulumiOptions;
const port = parentPort!;
const aborts = new Map<number, AbortController>();
port.on("message", (m: ToDouble) => {
  if (m.type === "abort") {
    aborts.get(m.id)?.abort();
    return;
  }
  const controller = new AbortController();
  aborts.set(m.id, controller);
  runFakePulumi(m.args, m.cwd, options, { signal: controller.signal, onOutput: (data) => port.postMessage({ type: "output", id: m.id, data } satisfies FromDouble) })
    .then((r) => port.postMessage({ type: "done", id: m.id, stdout: r.stdout, stderr: r.stderr, code: r.code } satisfies FromDouble))
    .catch((err: unknown) => port.postMessage({ type: "crashed", id: m.id, message: (err as Error).stack ?? String(err) } satisfies FromDouble))
    .finally(() => aborts.delete(m.id));
});
