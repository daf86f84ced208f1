import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatCidr, parseCidr } from "../../infra/model/cidr.ts";
import {
  AZ_LETTERS, dedicatedAzs, MAX_VPC_PREFIX, MIN_VPC_PREFIX, planSubnets, planViolations, SubnetPlanError,
} from "../../infra/model/subnets.ts";

/** A VPC block with the host bits cleared, /16../20. */
const vpcCidr = fc
  .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: MIN_VPC_PREFIX, max: MAX_VPC_PREFIX }))
  .map(([addr, prefix]) => formatCidr({ base: (addr & ((0xffffffff << (32 - prefix)) >>> 0)) >>> 0, prefix }));

/** A non-empty-enough set of AZ letters, in random order, and a region. */
const azLetters = fc.shuffledSubarray([...AZ_LETTERS], { minLength: 2, maxLength: AZ_LETTERS.length });
const region = fc.constantFrom("us-east-1", "eu-west-1", "ap-southeast-2");

describe("planSubnets: the example layout", () => {
  it("gives a /16 VPC /20 private subnets by AZ letter and /24 public subnets from the second half", () => {
    const plan = planSubnets({ vpcCidr: "10.64.0.0/16", azs: ["us-east-1a", "us-east-1b", "us-east-1c"], publicSubnets: true });
    expect(plan.private).toEqual([
      { az: "us-east-1a", cidr: "10.64.0.0/20" },
      { az: "us-east-1b", cidr: "10.64.16.0/20" },
      { az: "us-east-1c", cidr: "10.64.32.0/20" },
    ]);
    expect(plan.public).toEqual([
      { az: "us-east-1a", cidr: "10.64.128.0/24" },
      { az: "us-east-1b", cidr: "10.64.129.0/24" },
      { az: "us-east-1c", cidr: "10.64.130.0/24" },
    ]);
  });

  it("keys the block on the AZ letter, not the list position", () => {
    const plan = planSubnets({ vpcCidr: "10.1.0.0/16", azs: ["us-east-1c", "us-east-1a"] });
    expect(plan.private).toEqual([
      { az: "us-east-1c", cidr: "10.1.32.0/20" },
      { az: "us-east-1a", cidr: "10.1.0.0/20" },
    ]);
    expect(plan.public).toEqual([]);
  });

  it("collects every problem into one error", () => {
    let message = "";
    try {
      planSubnets({ vpcCidr: "10.1.0.0/24", azs: ["us-east-1a", "us-east-1a", "eu-west-1z", "nope"] });
    } catch (err) {
      expect(err).toBeInstanceOf(SubnetPlanError);
      message = (err as Error).message;
    }
    expect(message.split("\n")).toEqual([
      "Invalid subnet plan for VPC 10.1.0.0/24:",
      " - VPC 10.1.0.0/24 is a /24; the subnet layout needs a /16 to /20 (private subnets are /28, public /32)",
      ' - AZ "us-east-1a" is listed twice',
      ' - AZ "eu-west-1z": letters a-h are supported',
      ' - "nope" is not an AZ name like us-east-1a',
      " - AZs span several regions (us-east-1, eu-west-1); a VPC lives in one region",
    ]);
  });

  it("refuses a single AZ (an RDS subnet group needs two)", () => {
    expect(() => planSubnets({ vpcCidr: "10.1.0.0/16", azs: ["us-east-1a"] })).toThrow(/at least 2 are needed/);
  });

  it("derives dedicated AZs from the region: 3 in prod, 2 elsewhere, azCount overrides", () => {
    expect(dedicatedAzs("eu-west-1", "prod", undefined)).toEqual(["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    expect(dedicatedAzs("us-east-1", "staging", undefined)).toEqual(["us-east-1a", "us-east-1b"]);
    expect(dedicatedAzs("us-east-1", "dev", 4)).toEqual(["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]);
  });
});

describe("planSubnets: properties", () => {
  it("every subnet lies inside the VPC and no two overlap", () => {
    fc.assert(
      fc.property(vpcCidr, region, azLetters, fc.boolean(), (cidr, reg, letters, pub) => {
        const plan = planSubnets({ vpcCidr: cidr, azs: letters.map((l) => `${reg}${l}`), publicSubnets: pub });
        expect(planViolations(plan)).toEqual([]);
        expect(plan.private).toHaveLength(letters.length);
        expect(plan.public).toHaveLength(pub ? letters.length : 0);
      }),
      { numRuns: 300 },
    );
  });

  it("growing the AZ list leaves every existing AZ's subnets unchanged", () => {
    fc.assert(
      fc.property(vpcCidr, region, azLetters, fc.integer({ min: 1, max: AZ_LETTERS.length }), fc.boolean(), (cidr, reg, letters, extra, pub) => {
        const before = letters.slice(0, Math.max(2, letters.length - extra));
        const after = letters; // a superset of `before`, possibly with new AZs anywhere in the list
        const a = planSubnets({ vpcCidr: cidr, azs: before.map((l) => `${reg}${l}`), publicSubnets: pub });
        const b = planSubnets({ vpcCidr: cidr, azs: after.map((l) => `${reg}${l}`), publicSubnets: pub });
        for (const s of [...a.private, ...a.public]) {
          const kind = a.private.includes(s) ? b.private : b.public;
          expect(kind.find((x) => x.az === s.az)).toEqual(s);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("planViolations detects a subnet outside the VPC and an overlap (the checker itself can fail)", () => {
    const plan = planSubnets({ vpcCidr: "10.1.0.0/16", azs: ["us-east-1a", "us-east-1b"] });
    const broken = { ...plan, private: [...plan.private, { az: "us-east-1c", cidr: "10.2.0.0/20" }, { az: "us-east-1d", cidr: "10.1.8.0/21" }] };
    expect(planViolations(broken)).toEqual(["10.2.0.0/20 is outside 10.1.0.0/16", "10.1.8.0/21 overlaps 10.1.0.0/20"]);
    expect(parseCidr(plan.private[0]!.cidr).prefix).toBe(20);
  });
});
