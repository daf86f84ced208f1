/** Rollout rings (infra/model/rings.ts): parsing with one line per problem, and wave planning rules. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { requireFleet } from "../../infra/model/fleet.ts";
import { loadRings, parseRings, planWaves, rolloutTargets, type RolloutsConfig, type RolloutTarget } from "../../infra/model/rings.ts";

const PROJECT = new URL("../..", import.meta.url).pathname;
const ring = (name: string, select: RolloutsConfig["rings"][number]["select"], extra: Partial<RolloutsConfig["rings"][number]> = {}) => ({
  name, select, parallelism: 4, bakeMinutes: 0, failureBudgetPercent: 0, ...extra,
});
const t = (stack: string, env: string, pins: string[] = []): RolloutTarget => ({ stack, env, pins });

describe("rollout rings", () => {
  it("parses the example Pulumi.yaml and plans the example fleet: non-prod, canaries, 10 percent, the rest", () => {
    const rings = loadRings(PROJECT);
    const fleet = requireFleet({ projectDir: PROJECT });
    const waves = planWaves(rings, rolloutTargets(fleet));
    const all = waves.flatMap((w) => w.stacks);
    const expected = [...fleet.stacks.values()].filter((s) => s.ref.kind === "shared" || s.ref.kind === "dedicated").map((s) => s.ref.name);
    expect(all.sort()).toEqual(expected.sort());
    expect(waves[0]).toMatchObject({ ring: "non-prod", stacks: ["dedicated-megacorp-staging", "shared-staging-use1-01"], bakeMs: 600_000 });
    expect(waves[1]).toMatchObject({ ring: "canary", stacks: ["dedicated-acme-prod", "shared-prod-euw1-01", "shared-prod-use1-01"] });
    expect(waves.slice(2).map((w) => w.ring)).toEqual(["prod-10", "prod-rest"]);
    expect(waves[2]!.stacks).toHaveLength(1); // ceil(10% of 3)
  });

  it("reports every problem with its path, one line each", () => {
    const bad = { rings: [ring("a", { rest: true }), { name: "b", select: { stacks: ["x"], envs: ["prod"] } }, { name: "c", select: { percent: 0 }, parallelism: 0 }] };
    expect(() => parseRings(bad, "P")).toThrow(
      "P.rings.1.select: must be exactly one of { envs: [...] }, { stacks: [...] }, { percent: N } or { rest: true }\n" +
        "P.rings.2.select.percent: Too small: expected number to be >0\n" +
        "P.rings.2.parallelism: Too small: expected number to be >=1",
    );
    expect(() => parseRings({ rings: [ring("a", { rest: true }), ring("a", { envs: ["prod"] })] }, "P")).toThrow('P.rings.1.name: ring "a" is declared twice');
  });

  it("refuses a canary stack that is not in the fleet and a pin naming no ring", () => {
    const rings = { rings: [ring("canary", { stacks: ["shared-prod-nope-01"] }), ring("rest", { rest: true })] };
    expect(() => planWaves(rings, [t("a", "prod", ["later"])])).toThrow(
      'ring "canary": stack "shared-prod-nope-01" is not in the fleet (or not rolled out); remove it or fix its name\n' +
        'a: a tenant is pinned to ring "later", which Pulumi.yaml does not declare (rings: canary, rest)',
    );
  });

  it("puts a stack no ring matches in the last ring, and drops empty waves", () => {
    const rings = { rings: [ring("staging", { envs: ["staging"] }), ring("prod", { envs: ["prod"] })] };
    const waves = planWaves(rings, [t("x-dev", "dev"), t("y-prod", "prod")]);
    expect(waves.map((w) => [w.ring, w.stacks])).toEqual([["prod", ["x-dev", "y-prod"]]]);
    expect(waves[0]!.index).toBe(0);
  });

  it("a pin delays a stack to a later ring, never makes it earlier", () => {
    const rings = { rings: [ring("one", { envs: ["staging"] }), ring("two", { stacks: ["c-prod"] }), ring("three", { rest: true })] };
    const waves = planWaves(rings, [t("a-staging", "staging", ["three"]), t("b-staging", "staging"), t("c-prod", "prod", ["one"]), t("d-prod", "prod")]);
    expect(waves.map((w) => [w.ring, w.stacks])).toEqual([["one", ["b-staging"]], ["two", ["c-prod"]], ["three", ["a-staging", "d-prod"]]]);
  });

  it("every stack lands in exactly one wave, percent choices are stable, pins are honoured (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z]{1,8}$/), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.constantFrom("staging", "prod"), { minLength: 60, maxLength: 60 }),
        fc.array(fc.option(fc.constantFrom("a", "b", "c"), { nil: undefined }), { minLength: 60, maxLength: 60 }),
        (names, percent, envs, pins) => {
          const rings = { rings: [ring("a", { envs: ["staging"] }), ring("b", { percent }), ring("c", { rest: true })] };
          const targets = names.map((n, i) => t(n, envs[i]!, pins[i] ? [pins[i]] : []));
          const waves = planWaves(rings, targets);
          const placed = waves.flatMap((w) => w.stacks);
          expect(placed.sort()).toEqual([...names].sort());
          const ringOf = new Map(waves.flatMap((w) => w.stacks.map((s) => [s, w.ring] as const)));
          targets.forEach((x) => {
            if (x.pins[0]) expect(ringOf.get(x.stack)! >= x.pins[0]).toBe(true);
          });
          expect(planWaves(rings, [...targets].reverse())).toEqual(waves);
        },
      ),
      { numRuns: 300 },
    );
  });
});
