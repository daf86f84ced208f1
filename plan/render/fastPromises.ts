import { createRequire } from "node:module";

/**
 * The Pulumi SDK wraps every promise it tracks in `debuggablePromise` (runtime/debuggable.js),
 * which captures `new Error().stack` for each one. Those traces are only read by the SDK's
 * leak report when a process exits with unfinished promises. Rendering thousands of resources,
 * formatting them is the largest single cost (see BENCHMARKS.md).
 *
 * For the offline renderer only, `withFastPromises` swaps in a version that keeps the SDK's
 * leak bookkeeping but skips the trace, and puts the original back afterwards. SDK modules call
 * it through the module's exports object (`debuggable_1.debuggablePromise(...)`), so the swap
 * reaches every caller. `pulumi up` never goes through the renderer and is unaffected.
 *
 * The same holds for `Resource.stackTrace`, which formats a full stack for every resource to
 * send the engine its source position (shown in `pulumi up` diagnostics): the swap returns no
 * position while rendering offline.
 *
 * (Setting `Error.stackTraceLimit = 0` instead is not safe: module loaders that find the caller
 * from a stack trace then fail to load the providers' lazily required modules.)
 */
const require = createRequire(import.meta.url);

interface DebuggableModule {
  debuggablePromise<T>(p: Promise<T>, ctx: unknown): Promise<T>;
}
interface StateModule {
  getStore(): { leakCandidates: Set<Promise<unknown>> };
}

interface ResourceModule {
  Resource: { stackTrace(skip: number): unknown[] };
}

const debuggable = require("@pulumi/pulumi/runtime/debuggable.js") as DebuggableModule;
const resourceModule = require("@pulumi/pulumi/resource.js") as ResourceModule;
const state = require("@pulumi/pulumi/runtime/state.js") as StateModule;

function fastDebuggablePromise<T>(p: Promise<T>, _ctx: unknown): Promise<T> {
  const candidates = state.getStore().leakCandidates;
  candidates.add(p);
  return p.then(
    (val) => {
      candidates.delete(p);
      return val;
    },
    (err: unknown) => {
      candidates.delete(p);
      if (err && typeof err === "object") (err as { promise?: unknown }).promise = p;
      throw err;
    },
  );
}

export async function withFastPromises<T>(enabled: boolean, run: () => Promise<T>): Promise<T> {
  if (!enabled) return run();
  // Saved only to be put back unchanged in `finally`, never called detached.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = debuggable.debuggablePromise;
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const originalStackTrace = resourceModule.Resource.stackTrace;
  debuggable.debuggablePromise = fastDebuggablePromise;
  resourceModule.Resource.stackTrace = () => [];
  try {
    return await run();
  } finally {
    debuggable.debuggablePromise = original;
    resourceModule.Resource.stackTrace = originalStackTrace;
  }
}
