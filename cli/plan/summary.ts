import type { PlanDocument, Violation } from "../../plan/types.ts";
import { table } from "../table.ts";

export function countByLevel(violations: readonly Violation[], level: Violation["level"]): number {
  return violations.filter((v) => v.level === level).length;
}

export function hasMandatory(doc: PlanDocument): boolean {
  return doc.stacks.some((s) => countByLevel(s.violations, "mandatory") > 0);
}

/** One violation per line: `<level> <policy> <urn>: <message>` (stable, grep-able). */
export function formatViolation(v: Violation): string {
  return `${v.level} ${v.policy} ${v.urn}: ${v.message}`;
}

export function summaryTable(doc: PlanDocument): string {
  return table(
    ["STACK", "KIND", "TENANTS", "RESOURCES", "MANDATORY", "ADVISORY"],
    doc.stacks.map((s) => [
      s.name,
      s.kind,
      String(s.tenants.length),
      String(s.resources.length),
      String(countByLevel(s.violations, "mandatory")),
      String(countByLevel(s.violations, "advisory")),
    ]),
  );
}
