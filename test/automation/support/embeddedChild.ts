/**
 * A process that starts the embedded PostgreSQL of a directory (CHILD_DIR) and keeps it running,
 * for the orphan tests: the parent kills it with SIGKILL (the server outlives it) or keeps it alive
 * (the server is in use). Prints `ready <postmaster pid> <url>`; on SIGTERM stops the server.
 */
import { startEmbeddedPostgres } from "../../../automation/db/database.ts";

const server = await startEmbeddedPostgres(process.env.CHILD_DIR!, undefined, { persistent: true });
const keepAlive = setInterval(() => undefined, 60_000);
process.once("SIGTERM", () => {
  clearInterval(keepAlive);
  void server.stop().then(() => process.exit(0));
});
// Only now: a parent that reads `ready` may send SIGTERM at once. Printed before the handler, a
// SIGTERM that came in between killed this process (the signal's default action) and left its
// server running (seen in CI: exit by SIGTERM, the postmaster alive 15 s later).
process.stdout.write(`ready ${server.pid} ${server.url("postgres")}\n`);
