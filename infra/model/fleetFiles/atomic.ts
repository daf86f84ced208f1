/**
 * Crash-safe writes of tenant and stack files: a temporary file next to the target
 * (`<path>.tmp-<pid>`, which the control plane's crash recovery removes) and a rename or link,
 * so a crash never leaves half a file.
 */
import { existsSync, linkSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** The pattern of a temporary file an interrupted atomic write left behind. */
export const ATOMIC_TMP_SUFFIX = /\.tmp-\d+$/;

const tmpOf = (path: string) => `${path}.tmp-${process.pid}`;

/** Writes (or, for null, deletes) `path` via a temporary file and rename; creates missing directories. */
export function writeAtomic(path: string, content: string | null): void {
  if (content === null) {
    if (existsSync(path)) unlinkSync(path);
    return;
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tmpOf(path);
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export class FileExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} already exists`);
  }
}

/**
 * Creates `path` only if it is absent, via a temporary file and a hard link: two concurrent
 * creators of one file cannot overwrite each other (the second gets FileExistsError).
 */
export function createAtomic(path: string, text: string): void {
  const tmp = tmpOf(path);
  writeFileSync(tmp, text, { flag: "wx" });
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new FileExistsError(path);
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}
