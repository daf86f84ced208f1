/**
 * One way to open a connection pool: `createPool` (automation/db/database.ts), which gives the pool
 * an 'error' listener. `pool.end()` resolves before its idle clients have closed their sockets; a
 * server stopped right after sends them FATAL 57P01, and a pool without a listener re-emits that as
 * an uncaught exception (it failed a CI run from test/lifecycle/cli.test.ts). This scans the tree for
 * any other `new Pool(`, and shows on a fixture that the scan finds one.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "../..");
const ALLOWED = "automation/db/database.ts";
const ROOTS = ["automation", "cli", "infra", "plan", "policy", "test", "bench", "scripts"];
const RAW_POOL = /new\s+(?:pg\.)?Pool\s*\(/;

function sources(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : sources(p);
    return /\.(ts|mts|mjs|js)$/.test(e.name) ? [p] : [];
  });
}

/** Every `file:line` outside createPool's module that constructs a pg pool itself. */
export function rawPools(root: string): string[] {
  const self = relative(root, fileURLToPath(import.meta.url));
  return ROOTS.flatMap((r) => sources(join(root, r)))
    .map((f) => relative(root, f))
    .filter((f) => f !== ALLOWED && f !== self)
    .flatMap((f) => readFileSync(join(root, f), "utf8").split("\n").flatMap((line, i) => (RAW_POOL.test(line) ? [`${f}:${i + 1}`] : [])));
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("connection pools", () => {
  it("finds a pool constructed outside createPool (fixture)", () => {
    const dir = mkdtempSync(join(tmpdir(), "pools-"));
    dirs.push(dir);
    mkdirSync(join(dir, "test"), { recursive: true });
    writeFileSync(join(dir, "test", "a.test.ts"), 'import pg from "pg";\nconst p = new pg.Pool({ max: 1 });\n');
    mkdirSync(join(dir, "automation/db"), { recursive: true });
    writeFileSync(join(dir, ALLOWED), "export const pool = new pg.Pool({});\n");
    expect(rawPools(dir)).toEqual(["test/a.test.ts:2"]);
  });

  it("the real tree opens every pool through createPool", () => {
    expect(rawPools(REPO)).toEqual([]);
  });
});
