import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { affectedStacks, classifyPath } from "../../cli/affected/affected.ts";
import { GitError } from "../../cli/affected/git.ts";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import { createTempRepo, type TempRepo } from "./affected-fixture/repo.ts";
import { NEWCO, SCENARIOS } from "./affected-fixture/scenarios.ts";

let repo: TempRepo;
const commits: string[] = [];

beforeAll(() => {
  repo = createTempRepo();
  commits.push(repo.git("rev-parse", "HEAD").trim());
  for (const s of SCENARIOS) {
    s.apply(repo);
    commits.push(repo.commit(s.name));
  }
});

afterAll(() => repo?.cleanup());

describe("classifyPath", () => {
  it("sorts paths into tenant files, stack files, global paths and the rest", () => {
    expect(classifyPath("tenants/acme.yaml")).toEqual({ kind: "tenant", id: "acme" });
    expect(classifyPath("tenants/acme.yml")).toEqual({ kind: "tenant", id: "acme" });
    expect(classifyPath("tenants/tenant.schema.json")).toEqual({ kind: "other" });
    expect(classifyPath("stacks/Pulumi.shared-prod-use1-01.yaml")).toEqual({ kind: "stack", stack: "shared-prod-use1-01" });
    expect(classifyPath("stacks/README.md")).toEqual({ kind: "other" });
    expect(classifyPath("infra/components/cell.ts")).toEqual({ kind: "global" });
    expect(classifyPath("policy/policies/tags.ts")).toEqual({ kind: "global" });
    expect(classifyPath("Pulumi.yaml")).toEqual({ kind: "global" });
    expect(classifyPath("package-lock.json")).toEqual({ kind: "global" });
    expect(classifyPath("infrastructure.md")).toEqual({ kind: "other" });
    expect(classifyPath("cli/main.ts")).toEqual({ kind: "other" });
  });
});

describe("affectedStacks between commits of a real repository", () => {
  SCENARIOS.forEach((s, i) => {
    it(`${s.name}: ${s.affected.length ? s.affected.join(", ") : "no stack"}`, async () => {
      const r = await affectedStacks(repo.dir, commits[i]!, commits[i + 1]);
      expect(r.stacks).toEqual(s.affected);
      expect(r.base.commit).toBe(commits[i]);
      expect(r.head.commit).toBe(commits[i + 1]);
      expect(r.warnings).toEqual([]);
      // Only the re-placement changes an existing pooled tenant's cell (the library reports it; the commands refuse it).
      expect(r.placementChanges.map((p) => `${p.file}: ${p.path}`)).toEqual(s.name === "re-place a tenant" ? [`${commits[i + 1]}:tenants/gamma-labs.yaml: placement.prod`] : []);
    });
  });

  it("explains each stack and says which side has it", async () => {
    const replaced = SCENARIOS.findIndex((s) => s.name === "re-place a tenant");
    const r = await affectedStacks(repo.dir, commits[replaced]!, commits[replaced + 1]);
    expect(r.details).toEqual([
      { name: "shared-prod-use1-01", reasons: ["tenants/gamma-labs.yaml modified"], inBase: true, inHead: true },
      { name: "shared-prod-use1-02", reasons: ["tenants/gamma-labs.yaml modified"], inBase: true, inHead: true },
      { name: "shared-staging-use1-01", reasons: ["tenants/gamma-labs.yaml modified"], inBase: true, inHead: true },
    ]);
    const removed = SCENARIOS.findIndex((s) => s.name === "remove a dedicated tenant and its stack file");
    const d = await affectedStacks(repo.dir, commits[removed]!, commits[removed + 1]);
    expect(d.details).toEqual([
      {
        name: "dedicated-acme-prod",
        reasons: ["stacks/Pulumi.dedicated-acme-prod.yaml deleted", "tenants/acme.yaml deleted"],
        inBase: true,
        inHead: false,
      },
    ]);
  });

  it("accumulates over several commits: the union of what each touched", async () => {
    const r = await affectedStacks(repo.dir, commits[0]!, commits[4]);
    // add newco (use1-02), tier (use1-01, staging), re-place (use1-01, use1-02, staging), remove freebie-two (euw1-01).
    expect(r.stacks).toEqual(["shared-prod-euw1-01", "shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01"]);
  });

  it("compares with the working tree, untracked tenant files included, when no head is given", async () => {
    repo.write("tenants/walkin.yaml", NEWCO.replaceAll("newco", "walkin").replace("use1-02", "use1-01"));
    try {
      const r = await affectedStacks(repo.dir, "HEAD");
      expect(r.head).toEqual({ ref: "working tree" });
      expect(r.stacks).toEqual(["shared-prod-use1-01"]);
      expect(r.details[0]!.reasons).toEqual(["tenants/walkin.yaml added"]);
    } finally {
      repo.remove("tenants/walkin.yaml");
    }
  });

  it("rejects an unknown ref with a message that says what to do", async () => {
    await expect(affectedStacks(repo.dir, "origin/no-such-branch")).rejects.toThrow(GitError);
    await expect(affectedStacks(repo.dir, "origin/no-such-branch")).rejects.toThrow(/unknown git ref "origin\/no-such-branch".*fetch-depth: 0/);
    await expect(affectedStacks(repo.dir, "--output=/tmp/x")).rejects.toThrow(/cannot start with "-"/);
  });
});

describe("tenantctl affected", () => {
  it("prints one stack per line, sorted, and exits 0", async () => {
    const io = bufferIo();
    const tier = SCENARIOS.findIndex((s) => s.name === "change a tier");
    const code = await main(["affected", "--base", commits[tier]!, "--head", commits[tier + 1]!, "--project", repo.dir], io);
    expect(code).toBe(0);
    expect(io.stdout).toEqual(["shared-prod-use1-01", "shared-staging-use1-01"]);
    expect(io.stderr).toEqual([]);
  });

  it("refuses a pooled tenant's placement change (a move), exit 1 with one problem line, with and without --json", async () => {
    const replaced = SCENARIOS.findIndex((s) => s.name === "re-place a tenant");
    const head = commits[replaced + 1]!;
    for (const json of [[], ["--json"]]) {
      const io = bufferIo();
      expect(await main(["affected", "--base", commits[replaced]!, "--head", head, ...json, "--project", repo.dir], io)).toBe(1);
      expect(io.stdout).toEqual([]);
      expect(io.stderr).toHaveLength(1);
      expect(io.stderr[0]!.startsWith(`${head}:tenants/gamma-labs.yaml:`)).toBe(true);
      expect(io.stderr[0]).toMatch(/^[0-9a-f]{40}:tenants\/gamma-labs\.yaml:[0-9]+: placement\.prod: changed from use1-02 \(at [0-9a-f]{40}\) to use1-01: a pooled tenant changes cells only through a move/);
    }
  });

  it("--json carries the reasons and the sides for CI matrices", async () => {
    const io = bufferIo();
    const removed = SCENARIOS.findIndex((s) => s.name === "remove a dedicated tenant and its stack file");
    const code = await main(["affected", "--base", commits[removed]!, "--head", commits[removed + 1]!, "--json", "--project", repo.dir], io);
    expect(code).toBe(0);
    const doc = JSON.parse(io.stdout.join("\n")) as { stacks: string[]; details: { name: string; inHead: boolean }[] };
    expect(doc.stacks).toEqual(["dedicated-acme-prod"]);
    expect(doc.details.map((d) => [d.name, d.inHead])).toEqual([["dedicated-acme-prod", false]]);
    expect(doc).toMatchObject({ program: false, programPaths: [] }); // a tenant change goes straight to its stacks
  });

  it("--json says when a change is a program change (the deploy workflow rolls it out, docs/rollouts.md)", async () => {
    const io = bufferIo();
    const edit = SCENARIOS.findIndex((s) => s.name === "edit infra");
    expect(await main(["affected", "--base", commits[edit]!, "--head", commits[edit + 1]!, "--json", "--project", repo.dir], io)).toBe(0);
    const doc = JSON.parse(io.stdout.join("\n")) as { program: boolean; programPaths: string[]; stacks: string[] };
    expect(doc.program).toBe(true);
    expect(doc.programPaths.length).toBeGreaterThan(0);
    expect(doc.programPaths.every((p) => p.startsWith("infra/"))).toBe(true);
    expect(doc.stacks.length).toBe(10);
  });

  it("exits 2 with a clear message on a bad ref, and without --base", async () => {
    const io = bufferIo();
    expect(await main(["affected", "--base", "nope", "--project", repo.dir], io)).toBe(2);
    expect(io.stderr.join("\n")).toMatch(/^tenantctl: unknown git ref "nope"/);
    const io2 = bufferIo();
    expect(await main(["affected", "--project", repo.dir], io2)).toBe(2);
    expect(io2.stderr.join("\n")).toMatch(/--base/);
  });

  it("exits 1 with the problems when the head fleet is invalid", async () => {
    repo.write("tenants/broken.yaml", "id: broken\ntier: platinum\n");
    try {
      const io = bufferIo();
      expect(await main(["affected", "--base", "HEAD", "--project", repo.dir], io)).toBe(1);
      expect(io.stderr.some((l) => l.includes("broken.yaml") && l.includes("tier"))).toBe(true);
    } finally {
      repo.remove("tenants/broken.yaml");
    }
  });
});

describe("tenantctl validate --base", () => {
  it("refuses a placement edited in the working tree against the base; without --base, or with the edit undone, the fleet is valid", async () => {
    const text = repo.read("tenants/gamma-labs.yaml");
    expect(text).toContain("  prod: use1-01\n");
    repo.write("tenants/gamma-labs.yaml", text.replace("  prod: use1-01\n", "  prod: use1-02\n"));
    try {
      const io = bufferIo();
      expect(await main(["validate", "--base", "HEAD", "--project", repo.dir], io)).toBe(1);
      expect(io.stderr).toHaveLength(1);
      expect(io.stderr[0]).toMatch(/^(.*\/)?tenants\/gamma-labs\.yaml:\d+: placement\.prod: changed from use1-01 \(at HEAD\) to use1-02: .*put use1-01 back and move the tenant with `tenantctl move gamma-labs --env prod --to use1-02` \(the control plane's move workflow copies the data and commits the change\)$/);
      expect(io.stdout).toEqual(["1 problem found"]);
      const plain = bufferIo();
      expect(await main(["validate", "--project", repo.dir], plain)).toBe(0);
    } finally {
      repo.write("tenants/gamma-labs.yaml", text);
    }
    const io = bufferIo();
    expect(await main(["validate", "--base", "HEAD", "--project", repo.dir], io)).toBe(0);
    expect(io.stdout[0]).toMatch(/^ok: /);
    const bad = bufferIo();
    expect(await main(["validate", "--base", "no-such-ref", "--project", repo.dir], bad)).toBe(2);
    expect(bad.stderr.join("\n")).toMatch(/unknown git ref "no-such-ref"/);
  });
});

describe("a cell's stack file and its region's platform stack", () => {
  // The platform stack routes to every cell of its region (hubDestinations): a cell added, removed
  // or re-addressed changes its render; a cell change that moves no route does not.
  const cell = (name: string, region: string, cidr: string, azs: string) =>
    `config:\n  aws:region: ${region}\n  saas-tenancy:cell:\n    cidr: ${cidr}\n    azs: [${azs}]\n    ingressHostname: ingress.${name}.tenancy.example.com\n    capacity: 50\n`;
  const step = async (apply: () => void, message: string) => {
    const before = repo.git("rev-parse", "HEAD").trim();
    apply();
    const after = repo.commit(message);
    const r = await affectedStacks(repo.dir, before, after);
    expect(r.warnings).toEqual([]);
    return r;
  };
  const FILE = "stacks/Pulumi.shared-prod-use1-03.yaml";
  const why = (files: string) => `${files}: platform-us-east-1 routes to every cell of us-east-1 (its hub and runner reach each cell's CIDR)`;

  it("adding, re-addressing and removing a cell touch the cell and its region's platform stack, not the other region's", async () => {
    const added = await step(() => repo.write(FILE, cell("shared-prod-use1-03", "us-east-1", "10.3.0.0/16", "us-east-1a, us-east-1b")), "open a cell");
    expect(added.details).toEqual([
      { name: "platform-us-east-1", reasons: [why(`${FILE} added`)], inBase: true, inHead: true },
      { name: "shared-prod-use1-03", reasons: [`${FILE} added`], inBase: false, inHead: true },
    ]);
    const moved = await step(() => repo.write(FILE, cell("shared-prod-use1-03", "us-east-1", "10.4.0.0/16", "us-east-1a, us-east-1b")), "re-address the cell");
    expect(moved.details).toEqual([
      { name: "platform-us-east-1", reasons: [why(`${FILE} modified`)], inBase: true, inHead: true },
      { name: "shared-prod-use1-03", reasons: [`${FILE} modified`], inBase: true, inHead: true },
    ]);
    const removed = await step(() => repo.remove(FILE), "close the cell");
    expect(removed.stacks).toEqual(["platform-us-east-1", "shared-prod-use1-03"]);
    expect(removed.details[0]!.reasons).toEqual([why(`${FILE} deleted`)]);
  });

  it("negative controls: a cell change that moves no route touches the cell alone; a cell of another region touches that region's platform stack only", async () => {
    const capacity = await step(() => repo.write("stacks/Pulumi.shared-prod-use1-01.yaml", repo.read("stacks/Pulumi.shared-prod-use1-01.yaml").replace("capacity: 50", "capacity: 40")), "cell capacity");
    expect(capacity.stacks).toEqual(["shared-prod-use1-01"]);
    const euw1 = "stacks/Pulumi.shared-prod-euw1-02.yaml";
    const other = await step(() => repo.write(euw1, cell("shared-prod-euw1-02", "eu-west-1", "10.22.0.0/16", "eu-west-1a, eu-west-1b")), "open a cell in eu-west-1");
    expect(other.stacks).toEqual(["platform-eu-west-1", "shared-prod-euw1-02"]);
  });
});
