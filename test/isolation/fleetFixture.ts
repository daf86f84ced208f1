/**
 * The example fleet copied to a temp dir and extended so one cell holds more than two pooled
 * tenants (the example cells hold two each) and a dedicated tenant has short limits:
 *
 *  - shared-prod-use1-01: freebie-one, startup-alpha (examples) + northwind (free, active) and
 *    umbrella (standard, lifecycle suspended): three tenants that can log in and one that must not;
 *  - dedicated-initech-prod: a dedicated tenant whose limits are overridden in its tenant file
 *    (10 connections, 2 s statement timeout) so the live checks stay fast.
 *
 * The files are ordinary tenant and stack files validated by the fleet loader, and the stacks are
 * rendered by the real program: nothing here stands in for the program's output.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";

export const PROJECT_DIR = resolve(import.meta.dirname, "../..");

export const CELL_STACK = "shared-prod-use1-01";
export const DEDICATED_STACK = "dedicated-initech-prod";
export const SUSPENDED_TENANT = "umbrella";

const EXTRA_TENANTS: Record<string, string> = {
  "northwind.yaml": `id: northwind
displayName: Northwind Traders
tier: free
region: us-east-1
environments:
  prod: {}
placement:
  prod: use1-01
`,
  "umbrella.yaml": `id: umbrella
displayName: Umbrella Ltd
tier: standard
region: us-east-1
lifecycle: suspended
environments:
  prod: {}
placement:
  prod: use1-01
`,
  "initech.yaml": `id: initech
displayName: Initech
tier: dedicated
region: us-east-1
limits: { maxDbConnections: 10, statementTimeoutMs: 2000 }
secrets: [tps_report_key]
environments:
  prod: {}
dedicated:
  prod:
    cidr: 10.68.0.0/16
`,
};

export interface FleetFixture {
  fleet: Fleet;
  dir: string;
  cleanup(): void;
}

export function isolationFleet(): FleetFixture {
  const dir = mkdtempSync(join(tmpdir(), "saas-tenancy-fleet-"));
  cpSync(join(PROJECT_DIR, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  cpSync(join(PROJECT_DIR, "tenants"), join(dir, "tenants"), { recursive: true });
  cpSync(join(PROJECT_DIR, "stacks"), join(dir, "stacks"), { recursive: true });
  for (const [file, text] of Object.entries(EXTRA_TENANTS)) writeFileSync(join(dir, "tenants", file), text);
  writeFileSync(join(dir, "stacks", `Pulumi.${DEDICATED_STACK}.yaml`), "config:\n  aws:region: us-east-1\n");
  const fleet = requireFleet({ projectDir: dir });
  return { fleet, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The example fleet itself (IAM checks run on every example tenant). */
export function exampleFleet(): Fleet {
  return requireFleet({ projectDir: PROJECT_DIR });
}
