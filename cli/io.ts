/** Where a command writes. Tests pass buffers; the binary passes the process streams. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Whether stderr is an interactive terminal (progress is drawn only then). */
  isTty: boolean;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTty: Boolean(process.stderr.isTTY),
};

export function bufferIo(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => void stdout.push(l), err: (l) => void stderr.push(l), isTty: false };
}

/** Exit codes of every command (docs/architecture.md, "Contracts other tools rely on"). */
export const EXIT = { ok: 0, problems: 1, usage: 2 } as const;

/** A usage error (bad flag value, missing file): exit 2 with the message, no stack trace. */
export class UsageError extends Error {}

/** A failure that is the input's fault (exit 1), reported as lines. */
export class ProblemsError extends Error {
  constructor(readonly lines: readonly string[]) {
    super(lines.join("\n"));
  }
}
