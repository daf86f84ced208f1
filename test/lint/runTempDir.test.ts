/**
 * The test run's temporary files on a tmpfs (test/support/runTempDir.ts, fastTempDir): only a
 * tmpfs with room that every user may reach, never over an explicit TMPDIR, and the run's workers
 * then make their temporary directories there.
 */
import { statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { TMPFS_MAGIC } from "../../automation/git/runRoot.ts";
import { fastTempDir, RUN_TEMP_ENV } from "../support/runTempDir.ts";

const PROJECT = join(import.meta.dirname, "..", "..");

describe("fastTempDir", () => {
  it("keeps an explicit TMPDIR", () => {
    expect(fastTempDir({ TMPDIR: "/var/tmp" })).toBeUndefined();
  });

  it("refuses a directory that is not a tmpfs, and one that does not exist", () => {
    // Negative control for the file-system check: the project's own directory, on a disk here and in CI.
    expect(statfsSync(PROJECT).type).not.toBe(TMPFS_MAGIC);
    expect(fastTempDir({}, PROJECT)).toBeUndefined();
    expect(fastTempDir({}, join(PROJECT, "no-such-directory"))).toBeUndefined();
  });

  it("the run's workers make their temporary directories where the global set-up made the run's", () => {
    // Set-up chose TMPDIR in vitest's main process before the workers were forked: they inherit it.
    expect(dirname(process.env[RUN_TEMP_ENV]!)).toBe(tmpdir());
  });
});
