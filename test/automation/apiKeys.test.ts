/**
 * API keys without a server: the key file (scopes, ids, expiry, scrypt caps, migration errors),
 * lookup by the id a key carries, reloads on SIGHUP and on file change, and the hash-api-key CLI.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ApiKeyIndex, apiKeyRecord, loadApiKeys, newApiKey, newScryptApiKey, scryptHash } from "../../automation/http/apiKeys.ts";
import { ApiKeyRing } from "../../automation/http/keyRing.ts";
import { holdsScope, SCOPE_NAMES } from "../../automation/http/scopes.ts";
import { createLogger } from "../../automation/log.ts";

const PROJECT = resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "tenancy-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const sha = (key: string) => `sha256:${createHash("sha256").update(key).digest("hex")}`;

describe("API key file", () => {
  it("reads names, ids, scopes and expiry; names every bad entry with its fix", () => {
    const a = newApiKey("ci", ["read", "runs"]);
    const recs = loadApiKeys(write("good.yaml", `keys:\n${a.yaml}\n    expires: 2030-01-31\n`));
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ name: "ci", id: a.id, scopes: new Set(["read", "runs"]), expiresAt: new Date("2030-01-31T00:00:00Z") });

    const bad: [string, RegExp][] = [
      [`keys:\n  - name: ci\n    hash: ${sha("x")}\n`, new RegExp(`keys\\[0\\] \\(ci\\): scopes is required: one or more of ${SCOPE_NAMES.join(", ")}\\. `)],
      [`keys:\n  - name: ci\n    hash: ${sha("x")}\n    scopes: [read, root]\n`, /key ci: unknown scope root; scopes are read, /],
      [`keys:\n  - name: ci\n    hash: ${sha("x")}\n    scopes: []\n`, /key ci: scopes is empty/],
      [`keys:\n  - name: ci\n    hash: ${sha("x")}\n    scopes: [read]\n    expires: soon\n`, /key ci: expires must be an ISO date \(2027-06-30\)/],
      [`keys:\n  - name: ci\n    id: "XYZ"\n    hash: ${sha("x")}\n    scopes: [read]\n`, /key ci: id must be 12 lower-case hex digits/],
      [`keys:\n  - name: ops\n    hash: ${scryptHash("chosen key", 1024)}\n    scopes: [read]\n`, /key ops: a scrypt key needs an id .*`npm run control-plane -- hash-api-key ops --scrypt`/],
      [`keys:\n  - name: ops\n    id: "0123456789ab"\n    hash: scrypt:1048576:8:1:AAAA:AAAA\n    scopes: [read]\n`, /key ops: scrypt parameters N=1048576 r=8 p=1 exceed the caps \(N <= 65536, r <= 16, p <= 4, 128\*N\*r <= 64 MiB\).*hash-api-key ops --scrypt/],
      [`keys:\n  - name: ops\n    id: "0123456789ab"\n    hash: scrypt:16384:8:16:AAAA:AAAA\n    scopes: [read]\n`, /N=16384 r=8 p=16 exceed the caps/],
      [`keys:\n  - name: ci\n    hash: tcp_plaintext\n    scopes: [read]\n`, /never the key itself/],
      [`keys:\n  - name: a\n    id: "0123456789ab"\n    hash: ${sha("x")}\n    scopes: [read]\n  - name: b\n    id: "0123456789ab"\n    hash: ${sha("y")}\n    scopes: [read]\n`, /key id 0123456789ab is listed twice/],
    ];
    for (const [text, message] of bad) expect(() => loadApiKeys(write("bad.yaml", text)), text).toThrow(message);
  });

  it("finds a key by the id it carries, a key from before ids by its digest, and never accepts the hash itself", async () => {
    const a = newApiKey("ci", ["read"]);
    const chosen = newScryptApiKey("ops", "a key someone chose", ["admin"], 1024);
    const legacyKey = "tcp_legacyKeyMadeBeforeIdsExisted0123456789abcdefghij";
    const index = new ApiKeyIndex([
      apiKeyRecord({ name: "ci", id: a.id, hash: a.hash, scopes: ["read"] }),
      apiKeyRecord({ name: "ops", id: chosen.id, hash: chosen.hash, scopes: ["admin"] }),
      apiKeyRecord({ name: "old", hash: sha(legacyKey), scopes: ["read"] }),
    ]);
    expect(chosen.key).toBe(`tcp_${chosen.id}_a key someone chose`);
    expect(await index.verify(a.key)).toMatchObject({ name: "ci" });
    expect(await index.verify(chosen.key)).toMatchObject({ name: "ops" });
    expect(await index.verify(legacyKey)).toMatchObject({ name: "old" });
    for (const wrong of [a.hash, "", undefined, `${a.key}x`, `tcp_${chosen.id}_a key someone chose!`, "a key someone chose", `tcp_${a.id}_${"A".repeat(43)}`]) {
      expect(await index.verify(wrong), String(wrong)).toBeUndefined();
    }
  });

  it("admin holds every scope but offboard:immediate, which must be given by name", () => {
    for (const s of SCOPE_NAMES) expect(holdsScope(new Set(["admin"]), s), s).toBe(s !== "offboard:immediate");
    expect(holdsScope(new Set(["offboard:immediate"]), "offboard:immediate")).toBe(true);
    expect(holdsScope(new Set(["offboard:immediate"]), "offboard")).toBe(false);
    expect(holdsScope(new Set(["read"]), "runs")).toBe(false);
  });
});

describe("API key reload", () => {
  it("reloads on SIGHUP and on file change; a broken file leaves the previous keys in force", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const a = newApiKey("first", ["read"]);
    const b = newApiKey("second", ["runs"]);
    const c = newApiKey("third", ["billing"]);
    const sub = mkdtempSync(join(dir, "ring-"));
    const file = join(sub, "keys.yaml");
    writeFileSync(file, `keys:\n${a.yaml}\n`);
    const ring = new ApiKeyRing(loadApiKeys(file), { file, log: createLogger("info", sink) });
    ring.watch();
    try {
      const until = async (what: string, ok: () => boolean) => {
        for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
        expect(ok(), what).toBe(true);
      };
      expect(await ring.current.verify(b.key)).toBeUndefined();
      // File change: the watcher reloads.
      writeFileSync(file, `keys:\n${b.yaml}\n`);
      await until("reload on file change", () => lines.some((l) => l.msg === "API keys reloaded" && l.reason === "file changed"));
      expect(await ring.current.verify(b.key)).toMatchObject({ name: "second" });
      expect(await ring.current.verify(a.key)).toBeUndefined();
      // A broken file: logged, the keys stay.
      writeFileSync(file, "keys: [");
      await until("refused reload", () => lines.some((l) => l.msg === "API key file not reloaded; the previous keys stay in force"));
      expect(await ring.current.verify(b.key)).toMatchObject({ name: "second" });
      // SIGHUP: counted separately from the watcher's reloads.
      ring.close();
      ring.watch();
      writeFileSync(file, `keys:\n${c.yaml}\n`);
      process.kill(process.pid, "SIGHUP");
      await until("reload on SIGHUP", () => lines.some((l) => l.msg === "API keys reloaded" && l.reason === "SIGHUP"));
      expect(await ring.current.verify(c.key)).toMatchObject({ name: "third" });
    } finally {
      ring.close();
    }
    // Negative control: once closed, SIGHUP no longer reaches it (a listener of our own keeps the process alive).
    const keep = () => undefined;
    process.on("SIGHUP", keep);
    const before = ring.reloads;
    process.kill(process.pid, "SIGHUP");
    await new Promise((r) => setTimeout(r, 300));
    expect(ring.reloads).toBe(before);
    process.off("SIGHUP", keep);
  });
});

describe("npm run control-plane -- hash-api-key", () => {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;
  const run = (args: string[], input?: string) =>
    spawnSync(process.execPath, ["--import", tsx, join(PROJECT, "automation/main.ts"), "hash-api-key", ...args], {
      encoding: "utf8",
      timeout: 60_000,
      ...(input !== undefined ? { input } : {}),
    });

  it("prints help for --help instead of a key named --help", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run control-plane -- hash-api-key NAME \[--scopes SCOPE,\.\.\.\] \[--scrypt\]/);
    expect(r.stdout).toMatch(/offboard:immediate +offboard with a grace period below the minimum/);
    expect(r.stdout).not.toMatch(/tcp_[0-9a-f]{12}_|name: --help/);
  });

  it("prints a key whose entry loads with the scopes asked for; refuses unknown scopes", () => {
    const r = run(["deploy-bot", "--scopes", "read,runs"]);
    expect(r.status).toBe(0);
    const key = /^ {2}(tcp_[0-9a-f]{12}_\S+)$/m.exec(r.stdout)![1]!;
    const entry = r.stdout.slice(r.stdout.indexOf("  - name:"));
    const recs = loadApiKeys(write("cli.yaml", `keys:\n${entry}`));
    expect(recs[0]).toMatchObject({ name: "deploy-bot", scopes: new Set(["read", "runs"]) });
    const bad = run(["x", "--scopes", "read,everything"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--scopes: unknown scope everything; scopes are read, /);
    return new ApiKeyIndex(recs).verify(key).then((found) => expect(found).toMatchObject({ name: "deploy-bot" }));
  });

  it("hashes a chosen key with scrypt from standard input", async () => {
    const r = run(["ops", "--scrypt", "--scopes", "admin"], "correct horse battery staple\n");
    expect(r.status).toBe(0);
    const key = /^ {2}(tcp_[0-9a-f]{12}_correct horse battery staple)$/m.exec(r.stdout)![1]!;
    const recs = loadApiKeys(write("cli-scrypt.yaml", `keys:\n${r.stdout.slice(r.stdout.indexOf("  - name:"))}`));
    expect(recs[0]!.hash.kind).toBe("scrypt");
    expect(await new ApiKeyIndex(recs).verify(key)).toMatchObject({ name: "ops" });
  });
});
