/**
 * The revisions the affected and plan --base tests commit, in order, each with the stacks it must
 * touch. One list so both suites exercise the same history.
 */
import type { TempRepo } from "./repo.ts";

export const NEWCO = `id: newco
displayName: NewCo
tier: standard
region: us-east-1
secrets: [api_key]
environments:
  prod: {}
placement:
  prod: use1-02
`;

export interface Scenario {
  name: string;
  apply(repo: TempRepo): void;
  affected: string[];
}

const ALL_STACKS = [
  "dedicated-acme-prod",
  "dedicated-delta-health-prod",
  "dedicated-megacorp-prod",
  "dedicated-megacorp-staging",
  "platform-eu-west-1",
  "platform-us-east-1",
  "shared-prod-euw1-01",
  "shared-prod-use1-01",
  "shared-prod-use1-02",
  "shared-staging-use1-01",
];

function edit(repo: TempRepo, path: string, from: string, to: string): void {
  const text = repo.read(path);
  if (!text.includes(from)) throw new Error(`${path} does not contain ${JSON.stringify(from)}`);
  repo.write(path, text.replace(from, to));
}

export const SCENARIOS: Scenario[] = [
  {
    name: "add a tenant",
    apply: (r) => r.write("tenants/newco.yaml", NEWCO),
    affected: ["shared-prod-use1-02"],
  },
  {
    name: "change a tier",
    apply: (r) => edit(r, "tenants/startup-alpha.yaml", "tier: standard", "tier: enterprise"),
    // startup-alpha lives in prod and staging.
    affected: ["shared-prod-use1-01", "shared-staging-use1-01"],
  },
  {
    name: "re-place a tenant",
    apply: (r) => edit(r, "tenants/gamma-labs.yaml", "  prod: use1-02\n", "  prod: use1-01\n"),
    // Both prod cells, and its unchanged staging cell (stacksOfTenant of either side).
    affected: ["shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01"],
  },
  {
    name: "remove a tenant",
    apply: (r) => r.remove("tenants/freebie-two.yaml"),
    affected: ["shared-prod-euw1-01"],
  },
  {
    name: "edit infra",
    apply: (r) => edit(r, "infra/program.ts", "const EXTRA_TAGS: Record<string, string> = {};", 'const EXTRA_TAGS: Record<string, string> = { "cost-center": "platform" };'),
    affected: ALL_STACKS,
  },
  {
    name: "remove a dedicated tenant and its stack file",
    apply: (r) => {
      r.remove("tenants/acme.yaml");
      r.remove("stacks/Pulumi.dedicated-acme-prod.yaml");
    },
    affected: ["dedicated-acme-prod"],
  },
  {
    name: "change a cell's stack file",
    apply: (r) => edit(r, "stacks/Pulumi.shared-prod-use1-02.yaml", "capacity: 50", "capacity: 60"),
    affected: ["shared-prod-use1-02"],
  },
  {
    name: "change nothing the fleet uses",
    apply: (r) => r.write("docs/notes.md", "# notes\n"),
    affected: [],
  },
];
