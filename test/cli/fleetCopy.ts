/**
 * A disposable copy of the example fleet (tenants/, stacks/, Pulumi.yaml) for tests that mutate
 * files, and an in-process runner of tenantctl. Edits fail loudly when their anchor text is not
 * found, so a test can never pass because its mutation silently did nothing.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";

export const REPO = resolve(import.meta.dirname, "../..");

export interface CliResult {
  code: number;
  stdout: string[];
  stderr: string[];
}

/** Runs tenantctl in this process, exactly as bin/tenantctl.mjs does, capturing its output lines. */
export async function runCli(argv: readonly string[]): Promise<CliResult> {
  const io = bufferIo();
  const code = await main(argv, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

/** How tenantctl prints a file path: relative to the working directory when inside it, else absolute. */
export function shownPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel.startsWith("..") ? abs : rel;
}

export class FleetCopy {
  readonly dir: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "tenantctl-test-"));
    for (const p of ["tenants", "stacks", "Pulumi.yaml"]) cpSync(join(REPO, p), join(this.dir, p), { recursive: true });
  }

  path(rel: string): string {
    return join(this.dir, rel);
  }

  /** The path as tenantctl prints it in problem lines. */
  shown(rel: string): string {
    return shownPath(this.path(rel));
  }

  read(rel: string): string {
    return readFileSync(this.path(rel), "utf8");
  }

  write(rel: string, text: string): void {
    writeFileSync(this.path(rel), text);
  }

  /** Replaces the single occurrence of `from` in a file; throws if it is absent or ambiguous. */
  edit(rel: string, from: string, to: string): void {
    const text = this.read(rel);
    const at = text.indexOf(from);
    if (at < 0) throw new Error(`test setup: ${JSON.stringify(from)} not found in ${rel}`);
    if (text.indexOf(from, at + 1) >= 0) throw new Error(`test setup: ${JSON.stringify(from)} occurs twice in ${rel}`);
    this.write(rel, text.slice(0, at) + to + text.slice(at + from.length));
  }

  remove(rel: string): void {
    statSync(this.path(rel)); // throws when absent: the mutation must do something
    rmSync(this.path(rel));
  }

  /** 1-based line of the first line containing `needle`; throws when absent. */
  lineOf(rel: string, needle: string): number {
    const i = this.read(rel).split("\n").findIndex((l) => l.includes(needle));
    if (i < 0) throw new Error(`test setup: ${JSON.stringify(needle)} not found in ${rel}`);
    return i + 1;
  }

  /** Every file under the copy with its content, to prove a command wrote nothing. */
  snapshot(): Map<string, string> {
    const out = new Map<string, string>();
    const walk = (dir: string) => {
      for (const name of readdirSync(dir).sort()) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else out.set(relative(this.dir, p), readFileSync(p, "latin1"));
      }
    };
    walk(this.dir);
    return out;
  }

  run(argv: readonly string[]): Promise<CliResult> {
    return runCli([...argv, "--project", this.dir]);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
