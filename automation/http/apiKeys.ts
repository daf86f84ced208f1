/**
 * Internal API keys. The file (TENANCY_API_KEYS) holds only hashes:
 *
 *   keys:
 *     - name: ci
 *       hash: sha256:<64 hex>
 *     - name: ops
 *       hash: scrypt:<N>:<r>:<p>:<salt base64>:<hash base64>
 *
 * Keys are random 256-bit tokens, so a plain SHA-256 is enough to make a leaked file useless;
 * scrypt is accepted for keys a person chose. Every stored hash is compared on every request with
 * crypto.timingSafeEqual, so neither the match nor its position leaks through timing.
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export type ApiKeyRecord =
  | { name: string; kind: "sha256"; digest: Buffer }
  | { name: string; kind: "scrypt"; N: number; r: number; p: number; salt: Buffer; digest: Buffer };

/** Header carrying the key. */
export const API_KEY_HEADER = "x-api-key";
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

export function parseApiKeyHash(name: string, hash: string): ApiKeyRecord {
  const sha = /^sha256:([0-9a-f]{64})$/i.exec(hash);
  if (sha) return { name, kind: "sha256", digest: Buffer.from(sha[1]!, "hex") };
  const s = /^scrypt:(\d+):(\d+):(\d+):([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(hash);
  if (s) {
    const [N, r, p] = [Number(s[1]), Number(s[2]), Number(s[3])];
    if (N < 2 || (N & (N - 1)) !== 0) throw new Error(`key ${name}: scrypt N must be a power of two`);
    return { name, kind: "scrypt", N, r, p, salt: Buffer.from(s[4]!, "base64"), digest: Buffer.from(s[5]!, "base64") };
  }
  throw new Error(`key ${name}: hash must be sha256:<64 hex> or scrypt:<N>:<r>:<p>:<salt b64>:<hash b64> (never the key itself)`);
}

export function loadApiKeys(path: string): ApiKeyRecord[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split("\n")[0]}`);
  }
  const list = doc && typeof doc === "object" && "keys" in doc ? (doc as { keys: unknown }).keys : undefined;
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${path}: expected "keys:" with at least one { name, hash }`);
  const names = new Set<string>();
  return list.map((entry, i) => {
    const { name, hash } = (entry ?? {}) as { name?: unknown; hash?: unknown };
    if (typeof name !== "string" || typeof hash !== "string") throw new Error(`${path}: keys[${i}] needs a name and a hash`);
    if (names.has(name)) throw new Error(`${path}: key name ${name} is listed twice`);
    names.add(name);
    return parseApiKeyHash(name, hash);
  });
}

/** The name of the key that matches, or undefined. Constant time in the key's content. */
export function verifyApiKey(records: readonly ApiKeyRecord[], presented: string | undefined): string | undefined {
  if (!presented) return undefined;
  const key = Buffer.from(presented, "utf8");
  const sha = createHash("sha256").update(key).digest();
  let match: string | undefined;
  for (const rec of records) {
    const candidate =
      rec.kind === "sha256" ? sha : scryptSync(key, rec.salt, rec.digest.length, { N: rec.N, r: rec.r, p: rec.p, maxmem: SCRYPT_MAXMEM });
    const equal = candidate.length === rec.digest.length && timingSafeEqual(candidate, rec.digest);
    if (equal && match === undefined) match = rec.name;
  }
  return match;
}

/** A new random key and the line to put in the keys file. */
export function newApiKey(name: string): { key: string; hash: string; yaml: string } {
  const key = `tcp_${randomBytes(32).toString("base64url")}`;
  const hash = `sha256:${createHash("sha256").update(key).digest("hex")}`;
  return { key, hash, yaml: `  - name: ${name}\n    hash: ${hash}` };
}

/** scrypt hash line for a key a person chose. */
export function scryptHash(key: string, N = 16384, r = 8, p = 1): string {
  const salt = randomBytes(16);
  const digest = scryptSync(key, salt, 32, { N, r, p, maxmem: SCRYPT_MAXMEM });
  return `scrypt:${N}:${r}:${p}:${salt.toString("base64")}:${digest.toString("base64")}`;
}
