/**
 * Keeps the TypeScript compiler out of the processes that render plans until something uses it.
 *
 * `@pulumi/pulumi` loads the compiler when the SDK itself is first loaded: runtime/index.js ->
 * closure/serializeClosure.js -> createClosure.js -> parseFunction.js, which requires
 * typescript-shim.js at module load (it requires the `typescript` package, or the SDK's vendored
 * TypeScript 3.8.3 when that is not installed). The compiler serves function serialization only
 * (`pulumi.runtime.serializeFunction`, the callback functions of @pulumi/aws), which this program
 * never uses; loaded, it holds 34 to 38 MiB of resident memory in every process that renders
 * (BENCHMARKS.md section 1).
 *
 * `deferTypescript()` puts a placeholder in the CommonJS module cache under the shim's path. The
 * SDK's `require` receives the placeholder; the first use of any of its properties loads the real
 * shim (which takes the placeholder's place in the cache) and answers from it, so serializing a
 * function still works, one compiler load later (test/plan/deferTypescript.test.ts does both).
 *
 * It must run before the SDK is first loaded, so a caller calls it and then imports what loads the
 * SDK dynamically: a static import placed after it would be evaluated before it in esbuild's bundle
 * (packages stay external and their imports go to the top of the chunk). When the SDK is already
 * loaded it does nothing. `pulumi up` never runs it: the language host loads the program itself.
 */
import nodeModule, { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** Set on the placeholder module in the cache, for a process to tell from outside that the compiler was never loaded. */
export const DEFERRED_MARK = Symbol.for("saas-tenancy.deferredTypescript");

let shimPath: string | undefined;
let real: Record<PropertyKey, unknown> | undefined;

/** The shim's module: loaded on first call, in place of the placeholder. */
function load(): Record<PropertyKey, unknown> {
  if (real === undefined) {
    delete require.cache[shimPath!];
    real = require(shimPath!) as Record<PropertyKey, unknown>;
  }
  return real;
}

/**
 * Defers the SDK's TypeScript compiler in this process (see the file's comment). Returns whether the
 * placeholder is in place: false when the SDK (or the shim) was loaded already, or is not installed.
 */
export function deferTypescript(): boolean {
  if (shimPath !== undefined) return real === undefined;
  let path: string;
  try {
    path = require.resolve("@pulumi/pulumi/typescript-shim.js");
  } catch {
    return false;
  }
  if (require.cache[path]) return false;
  shimPath = path;
  const placeholder = new nodeModule(path);
  placeholder.filename = path;
  placeholder.loaded = true;
  placeholder.exports = new Proxy({}, {
    get: (_t, key) => load()[key],
    has: (_t, key) => key in load(),
    ownKeys: () => Reflect.ownKeys(load()),
    // Reported configurable: the proxy's own target is empty, so a non-configurable property
    // would break the proxy invariants; nothing reads the flag of a module's export.
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(load(), key);
      return d && { ...d, configurable: true };
    },
  });
  (placeholder as unknown as Record<symbol, boolean>)[DEFERRED_MARK] = true;
  require.cache[path] = placeholder;
  return true;
}

/** Whether this process has loaded the SDK's TypeScript compiler (through the placeholder or without it). */
export function typescriptLoaded(): boolean {
  if (shimPath !== undefined) return real !== undefined;
  try {
    return require.cache[require.resolve("@pulumi/pulumi/typescript-shim.js")] !== undefined;
  } catch {
    return false;
  }
}
