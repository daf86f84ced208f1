// The crash-injection suite (test/automation/crash/, docs/control-plane.md): run by
// `npm run test:crash`, a CI step of its own after `npm test` (.ci/run): it takes minutes.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/automation/crash/*.suite.ts"],
    pool: "forks",
    isolate: true,
    testTimeout: 600_000,
    hookTimeout: 180_000,
  },
});
