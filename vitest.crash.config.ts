// The crash-injection suite (test/automation/crash/, docs/control-plane.md): run by
// `npm run test:crash`, a CI step of its own after `npm test` (.ci/run): it takes minutes.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/automation/crash/*.suite.ts"],
    // The run's temporary directory, where the first server's initdb leaves a template cluster the
    // others copy (test/support/pgTemplate.ts): each installation's first life and the lifecycle
    // suite's tenant server start from it instead of running initdb.
    globalSetup: ["test/support/runTempDir.ts"],
    pool: "forks",
    isolate: true,
    // Both files at once: they share nothing (an installation each) and mostly wait (lives starting,
    // takeovers after a heartbeat timeout), so on a 2-core CI machine, where vitest's default is
    // one worker, they ran one after the other (205 s + 91 s at a load of 15, 148 s of CPU).
    maxWorkers: 2,
    testTimeout: 600_000,
    hookTimeout: 180_000,
  },
});
