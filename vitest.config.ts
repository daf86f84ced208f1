import { configDefaults, defineConfig } from "vitest/config";

/**
 * Test files that may share a process with the files before them (isolate: false): they render
 * stacks under Pulumi's mock runtime (plan/render/render.ts sets its config and mock monitor afresh
 * for every render, as a plan worker does for the many stacks it renders in one process) or test
 * pure functions; none mocks a module, spies, stubs the environment or globals, or uses fake
 * timers, and the process listeners they add are removed in `finally`. Each of these files pays
 * about 1.5 CPU-s to load @pulumi/pulumi and @pulumi/aws in a fresh process (the SDK loads the
 * TypeScript compiler at import), more than most of them spend testing: in one process these 57
 * files took 94 CPU-s instead of 214. A file added here must keep to the rules above.
 */
const SHARED_PROCESS = [
  "test/infra/**/*.test.ts",
  "test/policy/policies/**/*.test.ts",
  "test/model/**/*.test.ts",
  "test/plan/**/*.test.ts",
  // The IAM checks render stacks and simulate their policies; the rest of test/isolation starts PostgreSQL.
  "test/isolation/iam.isolation.test.ts",
  "test/isolation/deployer.iam.test.ts",
  "test/isolation/runtimeConfig.iam.test.ts",
];

export default defineConfig({
  test: {
    globalSetup: ["test/support/runTempDir.ts"],
    pool: "forks",
    // Vitest's default is one worker less than the CPUs: one worker on a 2-core CI machine, where
    // the files spend most of their time waiting on PostgreSQL and child processes (a whole run
    // took 907 s for 764 s of file time). Three workers overlap that waiting.
    maxWorkers: 3,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    projects: [
      { extends: true, test: { name: "shared", include: SHARED_PROCESS, isolate: false } },
      // Pulumi's mock runtime, module mocks, environment and process-wide state: every other test
      // file runs in its own forked process.
      { extends: true, test: { name: "isolated", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...SHARED_PROCESS], isolate: true } },
    ],
  },
});
