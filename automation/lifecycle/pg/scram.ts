/**
 * A PostgreSQL SCRAM-SHA-256 password verifier computed on the client, so `ALTER ROLE ... PASSWORD`
 * never carries the password itself: PostgreSQL stores a verifier it is given as is ("If the
 * presented password string is already in MD5-encrypted or SCRAM-encrypted format, then it is
 * stored as-is", https://www.postgresql.org/docs/current/sql-createrole.html), and a plain
 * password in the statement would reach the server log and the exported RDS logs (the docs' own
 * warning on CREATE ROLE). Format and derivation: RFC 5802 / RFC 7677 as PostgreSQL writes them
 * (src/common/scram-common.c, scram_build_secret):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64.
 *
 * Passwords given here are ASCII letters and digits (generated), which SASLprep leaves unchanged.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/** PostgreSQL's default (scram_iterations). */
export const SCRAM_ITERATIONS = 4096;

export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations: number = SCRAM_ITERATIONS): string {
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error("scramVerifier: the password must be printable ASCII without spaces (SASLprep is not implemented here)");
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
