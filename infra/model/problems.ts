/**
 * A problem found in a tenant or stack file. Rendered as `<file>:<line>: <yaml path>: <message>`
 * (docs/architecture.md): one line each, never a stack trace.
 */
export interface Problem {
  /** Path as the user typed it or relative to the project, e.g. tenants/acme.yaml. */
  file: string;
  /** 1-based line of the offending node, when known. */
  line?: number;
  /** Dotted YAML path (`environments.prod.teams`), or "" for the whole document. */
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  // One line per problem, always: a value quoted into a message must not break the format.
  return `${where}: ${p.path === "" ? "(document)" : p.path}: ${p.message.replace(/\r?\n/g, " ")}`;
}

/** Keys printed bare in a path; anything else (`..`, `a/b`, `sup port`) is quoted so the path stays unambiguous. */
const BARE_KEY = /^[A-Za-z0-9_$:-]+$/;

export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((k) => (typeof k === "number" ? `[${k}]` : BARE_KEY.test(String(k)) ? String(k) : `[${JSON.stringify(String(k))}]`))
    .join(".")
    .replace(/\.\[/g, "[");
}

/** Thrown where a caller needs a valid fleet and got problems instead. */
export class FleetError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(problems.map(formatProblem).join("\n"));
  }
}
