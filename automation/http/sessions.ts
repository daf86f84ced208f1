/**
 * Operator console sessions (docs/console.md): an API key, presented once at the console's login
 * page, exchanged for a random session token in an HTTP-only, SameSite=Strict, Secure cookie with
 * an expiry. The database holds the token's SHA-256 digest, the key's name and id and the CSRF
 * token of the session; never the key. Each request finds the key again in the keys in force, so
 * a key removed from TENANCY_API_KEYS (or expired) ends its sessions at once.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Pool } from "pg";
import type { ApiKeyIndex, ApiKeyRecord } from "./apiKeys.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "tenancy_console";
/** Header a session-authenticated request that changes something carries its CSRF token in. */
export const CSRF_HEADER = "x-csrf-token";
/** Form field of the console's forms carrying the CSRF token. */
export const CSRF_FIELD = "_csrf";
/** How long a session lasts after login (a working day); logging in again starts a new one. */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

export interface ConsoleSession {
  /** First 12 hex digits of the token's digest: names the session in logs, useless to an attacker. */
  ref: string;
  keyName: string;
  keyId: string | null;
  csrf: string;
  expiresAt: Date;
}

const digest = (token: string) => createHash("sha256").update(token, "utf8").digest();

export class ConsoleSessions {
  constructor(
    private readonly pool: Pool,
    private readonly ttlMs: number = SESSION_TTL_MS,
  ) {}

  /** A new session for `key`: the cookie's token (shown to no one but the browser) and the session. */
  async create(key: ApiKeyRecord, client: string): Promise<{ token: string; session: ConsoleSession }> {
    const token = randomBytes(32).toString("base64url");
    const csrf = randomBytes(24).toString("base64url");
    const expiresAt = new Date(Date.now() + this.ttlMs);
    const d = digest(token);
    // Expired sessions are of no use to anyone: cleared whenever someone logs in.
    await this.pool.query("DELETE FROM console_sessions WHERE expires_at <= now()");
    await this.pool.query("INSERT INTO console_sessions (token_sha256, key_name, key_id, csrf_token, client, expires_at) VALUES ($1, $2, $3, $4, $5, $6)", [
      d,
      key.name,
      key.id ?? null,
      csrf,
      client,
      expiresAt,
    ]);
    return { token, session: { ref: d.toString("hex").slice(0, 12), keyName: key.name, keyId: key.id ?? null, csrf, expiresAt } };
  }

  /** The unexpired session of a cookie token, or undefined. */
  async find(token: string | undefined): Promise<ConsoleSession | undefined> {
    if (!token || token.length > 200) return undefined;
    const d = digest(token);
    const { rows } = await this.pool.query<{ key_name: string; key_id: string | null; csrf_token: string; expires_at: Date }>(
      "SELECT key_name, key_id, csrf_token, expires_at FROM console_sessions WHERE token_sha256 = $1 AND expires_at > now()",
      [d],
    );
    const r = rows[0];
    if (!r) return undefined;
    return { ref: d.toString("hex").slice(0, 12), keyName: r.key_name, keyId: r.key_id, csrf: r.csrf_token, expiresAt: r.expires_at };
  }

  /** Ends a session (logout); true when there was one. */
  async end(token: string): Promise<boolean> {
    const { rowCount } = await this.pool.query("DELETE FROM console_sessions WHERE token_sha256 = $1", [digest(token)]);
    return (rowCount ?? 0) > 0;
  }
}

/** The key record a session was made with, if it is still in force (same name and id). */
export function sessionKey(keys: ApiKeyIndex, s: Pick<ConsoleSession, "keyName" | "keyId">): ApiKeyRecord | undefined {
  return keys.records.find((r) => r.name === s.keyName && (r.id ?? null) === s.keyId);
}

/** Whether `presented` is the session's CSRF token (constant time). */
export function csrfMatches(s: Pick<ConsoleSession, "csrf">, presented: unknown): boolean {
  if (typeof presented !== "string") return false;
  const a = Buffer.from(s.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
