import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { MachineFacts } from "./machine.ts";
import type { Summary } from "./stats.ts";

export interface Target {
  /** What is measured, e.g. "plan 100 pooled tenants: wall time". */
  figure: string;
  value: number;
  unit: string;
  /** The target as text, e.g. "<= 2000". */
  target: string;
  pass: boolean;
  /** The section that measured it (bench/run.ts sets it), so a partial run's figures stay attributable. */
  section?: string;
}

/** One benchmark's outcome: its raw data for results.json, table rows, and its targets. */
export interface Section {
  name: string;
  data: unknown;
  rows: string[][];
  targets: Target[];
}

export interface Results {
  machine: MachineFacts;
  runsPerFigure: number;
  sections: Record<string, unknown>;
  targets: Target[];
}

export function target(figure: string, value: number, unit: string, op: "<=" | ">=", limit: number): Target {
  return { figure, value: round(value), unit, target: `${op} ${limit} ${unit}`, pass: op === "<=" ? value <= limit : value >= limit };
}

export function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function fmtSummary(s: Summary, unit: string): string {
  return `${round(s.median, 1)} ${unit} (min ${round(s.min, 1)}, max ${round(s.max, 1)}, IQR ${round(s.relativeIqr * 100, 0)}%, n=${s.runs})`;
}

export function writeResults(path: string, results: Results): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}

export function printTable(rows: readonly (readonly string[])[], header: readonly string[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
