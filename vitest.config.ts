import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/runTempDir.ts"],
    // Pulumi's mock runtime is process-wide state: every test file runs in its own forked process.
    pool: "forks",
    isolate: true,
    // Vitest's default is one worker less than the CPUs: one worker on a 2-core CI machine, where
    // the files spend most of their time waiting on PostgreSQL and child processes (a whole run
    // took 907 s for 764 s of file time). Three workers overlap that waiting.
    maxWorkers: 3,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
