/**
 * Internal API keys. The file (TENANCY_API_KEYS) holds only hashes, each key's scopes and,
 * optionally, its expiry (docs/security.md):
 *
 *   keys:
 *     - name: ci
 *       id: 3f9a1c0d2b7e                       # carried in the key: tcp_3f9a1c0d2b7e_<secret>
 *       hash: sha256:<64 hex>
 *       scopes: [read, runs]
 *       expires: 2027-06-30                    # optional; ISO date or date-time (UTC)
 *     - name: ops
 *       id: 0c4d2e9f7a11
 *       hash: scrypt:<N>:<r>:<p>:<salt base64>:<hash base64>
 *       scopes: [admin]
 *
 * A request's key names its record by the id it carries, so one record is checked, never all of
 * them; scrypt (for keys a person chose) runs on libuv's thread pool, at most SCRYPT_CONCURRENCY
 * at once, with capped parameters, so no request can hold the event loop. Keys made before ids
 * existed (sha256 records without `id`) are still found, by their digest; a scrypt record
 * without an id is refused with the command that makes a new one. Digests are compared with
 * crypto.timingSafeEqual.
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { isMap, isSeq, parse, parseDocument } from "yaml";
import { isScope, SCOPE_NAMES, type Scope } from "./scopes.ts";

export type ApiKeyHash =
  | { kind: "sha256"; digest: Buffer }
  | { kind: "scrypt"; N: number; r: number; p: number; salt: Buffer; digest: Buffer };

export interface ApiKeyRecord {
  name: string;
  /** The id a key carries (`tcp_<id>_<secret>`); absent only for sha256 keys made before ids existed. */
  id?: string;
  hash: ApiKeyHash;
  scopes: ReadonlySet<Scope>;
  /** After this instant the key is refused. */
  expiresAt?: Date;
}

/** Header carrying the key. */
export const API_KEY_HEADER = "x-api-key";
/** Caps on scrypt parameters a key file may ask for: each failed request costs this much. */
export const SCRYPT_CAPS = { N: 65_536, r: 16, p: 4, memoryBytes: 64 * 1024 * 1024 } as const;
/**
 * scrypt computations at once: one core at most (libuv's pool has 4 threads; file and DNS work
 * needs the rest, and the server may have 2 cores). Random keys (sha256) never wait for it.
 */
export const SCRYPT_CONCURRENCY = 1;
/** Key checks waiting for a scrypt slot before further ones are answered "busy". */
export const SCRYPT_QUEUE = 32;
const KEY_PATTERN = /^tcp_([0-9a-f]{12})_(.+)$/s;
const ID_PATTERN = /^[0-9a-f]{12}$/;
export const HASH_COMMAND = "npm run control-plane -- hash-api-key";

export class ApiKeyFileError extends Error {}

export function parseApiKeyHash(name: string, hash: string): ApiKeyHash {
  const sha = /^sha256:([0-9a-f]{64})$/i.exec(hash);
  if (sha) return { kind: "sha256", digest: Buffer.from(sha[1]!, "hex") };
  const s = /^scrypt:(\d+):(\d+):(\d+):([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(hash);
  if (s) {
    const [N, r, p] = [Number(s[1]), Number(s[2]), Number(s[3])];
    if (N < 2 || (N & (N - 1)) !== 0) throw new ApiKeyFileError(`key ${name}: scrypt N must be a power of two, got ${N}`);
    if (r < 1 || p < 1) throw new ApiKeyFileError(`key ${name}: scrypt r and p must be at least 1`);
    if (N > SCRYPT_CAPS.N || r > SCRYPT_CAPS.r || p > SCRYPT_CAPS.p || 128 * N * r > SCRYPT_CAPS.memoryBytes) {
      throw new ApiKeyFileError(
        `key ${name}: scrypt parameters N=${N} r=${r} p=${p} exceed the caps (N <= ${SCRYPT_CAPS.N}, r <= ${SCRYPT_CAPS.r}, p <= ${SCRYPT_CAPS.p}, ` +
          `128*N*r <= ${SCRYPT_CAPS.memoryBytes / 1024 / 1024} MiB): every request presenting this key would cost that much; ` +
          `re-hash it with \`${HASH_COMMAND} ${name} --scrypt\``,
      );
    }
    return { kind: "scrypt", N, r, p, salt: Buffer.from(s[4]!, "base64"), digest: Buffer.from(s[5]!, "base64") };
  }
  throw new ApiKeyFileError(`key ${name}: hash must be sha256:<64 hex> or scrypt:<N>:<r>:<p>:<salt b64>:<hash b64> (never the key itself)`);
}

export interface ApiKeyFields {
  name: string;
  hash: string;
  scopes: readonly string[];
  id?: string;
  expires?: string;
}

/** One record from its fields, every problem named (used by the file loader and by tests). */
export function apiKeyRecord(f: ApiKeyFields): ApiKeyRecord {
  const hash = parseApiKeyHash(f.name, f.hash);
  if (f.id !== undefined && !ID_PATTERN.test(f.id)) throw new ApiKeyFileError(`key ${f.name}: id must be 12 lower-case hex digits (what \`${HASH_COMMAND}\` prints), got ${JSON.stringify(f.id)}`);
  if (f.id === undefined && hash.kind === "scrypt") {
    throw new ApiKeyFileError(
      `key ${f.name}: a scrypt key needs an id (the key then names its record, so a request checks one hash instead of all); ` +
        `make a new key with \`${HASH_COMMAND} ${f.name} --scrypt\` and replace this entry`,
    );
  }
  const bad = f.scopes.filter((s) => !isScope(s));
  if (bad.length > 0) throw new ApiKeyFileError(`key ${f.name}: unknown scope ${bad.join(", ")}; scopes are ${SCOPE_NAMES.join(", ")}`);
  if (f.scopes.length === 0) throw new ApiKeyFileError(`key ${f.name}: scopes is empty; give it one or more of ${SCOPE_NAMES.join(", ")}`);
  let expiresAt: Date | undefined;
  if (f.expires !== undefined) {
    expiresAt = new Date(/^\d{4}-\d{2}-\d{2}$/.test(f.expires) ? `${f.expires}T00:00:00Z` : f.expires);
    if (Number.isNaN(expiresAt.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(f.expires)) {
      throw new ApiKeyFileError(`key ${f.name}: expires must be an ISO date (2027-06-30) or date-time (2027-06-30T12:00:00Z), got ${JSON.stringify(f.expires)}`);
    }
  }
  return { name: f.name, ...(f.id !== undefined ? { id: f.id } : {}), hash, scopes: new Set(f.scopes as Scope[]), ...(expiresAt ? { expiresAt } : {}) };
}

export function loadApiKeys(path: string): ApiKeyRecord[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ApiKeyFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split("\n")[0]}`);
  }
  const list = doc && typeof doc === "object" && "keys" in doc ? doc.keys : undefined;
  if (!Array.isArray(list) || list.length === 0) throw new ApiKeyFileError(`${path}: expected "keys:" with at least one { name, id, hash, scopes }`);
  const names = new Set<string>();
  const ids = new Set<string>();
  return list.map((entry, i) => {
    const e = (entry ?? {}) as Record<string, unknown>;
    const { name, hash, scopes, id } = e;
    let expires = e.expires;
    if (expires instanceof Date) expires = expires.toISOString();
    if (typeof name !== "string" || typeof hash !== "string") throw new ApiKeyFileError(`${path}: keys[${i}] needs a name and a hash`);
    if (scopes === undefined) {
      throw new ApiKeyFileError(
        `${path}: keys[${i}] (${name}): scopes is required: one or more of ${SCOPE_NAMES.join(", ")}. ` +
          `Keys made before scopes existed could do everything; give each only what its client needs (scopes: [read] for a dashboard, [admin] for operators)`,
      );
    }
    if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === "string")) throw new ApiKeyFileError(`${path}: keys[${i}] (${name}): scopes must be a list of names`);
    if (id !== undefined && typeof id !== "string") throw new ApiKeyFileError(`${path}: keys[${i}] (${name}): id must be a string (quote it)`);
    if (expires !== undefined && typeof expires !== "string") throw new ApiKeyFileError(`${path}: keys[${i}] (${name}): expires must be an ISO date`);
    if (names.has(name)) throw new ApiKeyFileError(`${path}: key name ${name} is listed twice`);
    names.add(name);
    if (typeof id === "string") {
      if (ids.has(id)) throw new ApiKeyFileError(`${path}: key id ${id} is listed twice`);
      ids.add(id);
    }
    try {
      return apiKeyRecord({ name, hash, scopes, ...(typeof id === "string" ? { id } : {}), ...(typeof expires === "string" ? { expires } : {}) });
    } catch (err) {
      throw new ApiKeyFileError(`${path}: ${(err as Error).message}`);
    }
  });
}

/** The records of one key file, indexed so a presented key is checked against one record. */
export class ApiKeyIndex {
  private readonly byId = new Map<string, ApiKeyRecord>();
  private readonly legacy = new Map<string, ApiKeyRecord>();
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly records: readonly ApiKeyRecord[]) {
    for (const r of records) {
      if (r.id !== undefined) this.byId.set(r.id, r);
      else if (r.hash.kind === "sha256") this.legacy.set(r.hash.digest.toString("hex"), r);
    }
  }

  /**
   * The record the key matches, undefined when none does, or "busy" when too many scrypt checks
   * are waiting already (the caller answers 503 without hashing).
   */
  async verify(presented: string | undefined): Promise<ApiKeyRecord | undefined | "busy"> {
    if (!presented) return undefined;
    const key = Buffer.from(presented, "utf8");
    const m = KEY_PATTERN.exec(presented);
    const rec = m ? this.byId.get(m[1]!) : undefined;
    if (!rec) {
      // Keys without an id (made before ids existed): the digest of a 256-bit random key finds its record.
      const sha = createHash("sha256").update(key).digest();
      const legacy = this.legacy.get(sha.toString("hex"));
      return legacy && legacy.hash.digest.length === sha.length && timingSafeEqual(legacy.hash.digest, sha) ? legacy : undefined;
    }
    const h = rec.hash;
    let candidate: Buffer;
    if (h.kind === "sha256") candidate = createHash("sha256").update(key).digest();
    else {
      if (this.active >= SCRYPT_CONCURRENCY && this.waiting.length >= SCRYPT_QUEUE) return "busy";
      candidate = await this.withSlot(() => scryptAsync(key, h.salt, h.digest.length, { N: h.N, r: h.r, p: h.p, maxmem: 2 * SCRYPT_CAPS.memoryBytes }));
    }
    return candidate.length === h.digest.length && timingSafeEqual(candidate, h.digest) ? rec : undefined;
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= SCRYPT_CONCURRENCY) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

function scryptAsync(key: Buffer, salt: Buffer, len: number, opts: { N: number; r: number; p: number; maxmem: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(key, salt, len, opts, (err, out) => (err ? reject(err) : resolve(out))));
}

function keyLines(name: string, id: string, hash: string, scopes: readonly Scope[]): string {
  return `  - name: ${name}\n    id: "${id}"\n    hash: ${hash}\n    scopes: [${scopes.join(", ")}]`;
}

/**
 * Adds a key's entry to the `keys:` list of a keys file, creating the file when it does not exist;
 * comments and the other entries are kept (the file is edited as a YAML document). Throws, writing
 * nothing, when the file is not a keys file or already has a key of that name.
 */
export function addKeyEntry(file: string, entry: { name: string; id: string; hash: string; scopes: readonly Scope[] }): void {
  const existing = existsSync(file) ? readFileSync(file, "utf8") : "";
  const doc = parseDocument(existing.trim() === "" ? "keys: []\n" : existing);
  if (doc.errors.length > 0) throw new ApiKeyFileError(`${file}: not YAML (${doc.errors[0]!.message.split("\n")[0]})`);
  if (!isMap(doc.contents)) throw new ApiKeyFileError(`${file}: expected a mapping with "keys:"`);
  let keys = doc.get("keys");
  if (keys === undefined || keys === null) {
    doc.set("keys", doc.createNode([]));
    keys = doc.get("keys");
  }
  if (!isSeq(keys)) throw new ApiKeyFileError(`${file}: "keys:" must be a list`);
  const names = keys.items.map((k) => (isMap(k) ? k.get("name") : undefined));
  if (names.includes(entry.name)) throw new ApiKeyFileError(`${file}: already has a key named ${entry.name}; choose another NAME or remove that entry first`);
  keys.flow = false;
  keys.add(doc.createNode({ name: entry.name, id: entry.id, hash: entry.hash, scopes: [...entry.scopes] }));
  writeFileSync(file, doc.toString(), { mode: 0o600 });
}

/** A new random key (`tcp_<id>_<secret>`) and its entry for the keys file. */
export function newApiKey(name: string, scopes: readonly Scope[] = ["read"]): { key: string; id: string; hash: string; yaml: string } {
  const id = randomBytes(6).toString("hex");
  const key = `tcp_${id}_${randomBytes(32).toString("base64url")}`;
  const hash = `sha256:${createHash("sha256").update(key).digest("hex")}`;
  return { key, id, hash, yaml: keyLines(name, id, hash, scopes) };
}

/** A key a person chose, prefixed with a new id, and its scrypt entry for the keys file. */
export function newScryptApiKey(name: string, secret: string, scopes: readonly Scope[] = ["read"], N = 16384, r = 8, p = 1): { key: string; id: string; hash: string; yaml: string } {
  const id = randomBytes(6).toString("hex");
  const key = `tcp_${id}_${secret}`;
  const hash = scryptHash(key, N, r, p);
  return { key, id, hash, yaml: keyLines(name, id, hash, scopes) };
}

/** scrypt hash line for a key (sync: the CLI and tests only). */
export function scryptHash(key: string, N = 16384, r = 8, p = 1): string {
  const salt = randomBytes(16);
  const digest = scryptSync(key, salt, 32, { N, r, p, maxmem: 2 * SCRYPT_CAPS.memoryBytes });
  return `scrypt:${N}:${r}:${p}:${salt.toString("base64")}:${digest.toString("base64")}`;
}
