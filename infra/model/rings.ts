/**
 * Rollout rings: how a program, policy or platform change reaches the fleet (docs/rollouts.md).
 * Rings are declared in Pulumi.yaml under `saas-tenancy:rollouts`; this module parses
 * them and plans a rollout's waves: one wave per ring, each stack in exactly one wave. Pure: no
 * I/O beyond reading Pulumi.yaml in `loadRings`, no Pulumi or AWS SDK.
 *
 * Assignment rules (each a test in test/model/rings.test.ts):
 * - a stack goes to the first ring whose selector matches it (`envs`, `stacks`, `percent` of the
 *   stacks no earlier ring took, chosen by a stable hash of the name, or `rest`);
 * - a stack no ring matches goes to the last ring (never silently left out);
 * - a tenant pinned to a ring (`rolloutRing` in its file) delays its stacks to that ring when it is
 *   later; a cell goes with the latest pin of its residents. A pin never makes a stack earlier;
 * - empty waves are dropped.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { tenantsOfStack, type Fleet } from "./fleet.ts";
import { PROJECT } from "./platform.ts";

export const ROLLOUTS_KEY = "rollouts";

/** Default bake time after a wave, minutes, when a ring sets none. */
export const DEFAULT_BAKE_MINUTES = 0;
/** Default stacks updated at once within a wave. */
export const DEFAULT_PARALLELISM = 4;

const name = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, "must be a short lower-case name (letters, digits, dashes)");

const SelectorSchema = z.union([
  z.object({ envs: z.array(z.string().min(1)).min(1) }).strict(),
  z.object({ stacks: z.array(z.string().min(1)).min(1) }).strict(),
  z.object({ percent: z.number().gt(0).max(100) }).strict(),
  z.object({ rest: z.literal(true) }).strict(),
], { error: "must be exactly one of { envs: [...] }, { stacks: [...] }, { percent: N } or { rest: true }" });

export const RingSchema = z
  .object({
    name,
    select: SelectorSchema,
    /** Stacks updated at once in this ring's wave. @default 4 */
    parallelism: z.number().int().min(1).max(256).default(DEFAULT_PARALLELISM),
    /** Minutes to wait after the wave ends before the next starts. @default 0 */
    bakeMinutes: z.number().min(0).max(7 * 24 * 60).default(DEFAULT_BAKE_MINUTES),
    /** Failed stacks tolerated, percent of the wave (rounded down): 0 halts on any failure. @default 0 */
    failureBudgetPercent: z.number().min(0).max(100).default(0),
  })
  .strict();

export const RolloutsSchema = z
  .object({ rings: z.array(RingSchema).min(1) })
  .strict()
  .superRefine((v, ctx) => {
    const seen = new Set<string>();
    v.rings.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: "custom", path: ["rings", i, "name"], message: `ring "${r.name}" is declared twice` });
      seen.add(r.name);
    });
  });

export type Ring = z.infer<typeof RingSchema>;
export type RolloutsConfig = z.infer<typeof RolloutsSchema>;

export class RingsError extends Error {}

/** Parses a `saas-tenancy:rollouts` value; every problem on its own line, with its YAML path. */
export function parseRings(value: unknown, where: string): RolloutsConfig {
  const result = RolloutsSchema.safeParse(value);
  if (!result.success) {
    throw new RingsError(result.error.issues.map((i) => `${where}.${i.path.join(".")}: ${i.message}`).join("\n"));
  }
  return result.data;
}

/** Reads the rings from Pulumi.yaml (`config.saas-tenancy:rollouts.value`). */
export function loadRings(projectDir: string): RolloutsConfig {
  const file = join(projectDir, "Pulumi.yaml");
  const doc = parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const key = `${PROJECT}:${ROLLOUTS_KEY}`;
  const entry = doc?.config?.[key];
  if (entry === undefined) {
    throw new RingsError(`${file}: config.${key} is missing: declare the rollout rings there (docs/rollouts.md)`);
  }
  const value = entry && typeof entry === "object" && "value" in entry ? entry.value : entry;
  return parseRings(value, `${file}: config.${key}`);
}

/** What the planner needs to know of a stack. */
export interface RolloutTarget {
  stack: string;
  env: string;
  /** Ring names the stack's tenants are pinned to (none for most). */
  pins: readonly string[];
}

export interface PlannedWave {
  /** 0-based position among the rollout's waves (empty rings dropped). */
  index: number;
  ring: string;
  parallelism: number;
  bakeMs: number;
  failureBudgetPercent: number;
  stacks: string[];
}

/** A stack's stable position for percentage selection: the same stacks are chosen every time. */
function rank(stack: string): string {
  return createHash("sha256").update(stack).digest("hex");
}

/**
 * Plans the waves of a rollout over `targets`. Throws RingsError (one line per problem) for a
 * `stacks` selector naming a stack that is not a target, or a pin naming no ring.
 */
export function planWaves(config: RolloutsConfig, targets: readonly RolloutTarget[]): PlannedWave[] {
  const ringIndex = new Map(config.rings.map((r, i) => [r.name, i]));
  const known = new Set(targets.map((t) => t.stack));
  const problems: string[] = [];
  config.rings.forEach((r) => {
    if ("stacks" in r.select) {
      for (const s of r.select.stacks) if (!known.has(s)) problems.push(`ring "${r.name}": stack "${s}" is not in the fleet (or not rolled out); remove it or fix its name`);
    }
  });
  for (const t of targets) {
    for (const p of t.pins) {
      if (!ringIndex.has(p)) problems.push(`${t.stack}: a tenant is pinned to ring "${p}", which Pulumi.yaml does not declare (rings: ${config.rings.map((r) => r.name).join(", ")})`);
    }
  }
  if (problems.length > 0) throw new RingsError(problems.join("\n"));

  const assigned = new Map<string, number>();
  let remaining = [...targets].sort((a, b) => (a.stack < b.stack ? -1 : a.stack > b.stack ? 1 : 0));
  config.rings.forEach((ring, i) => {
    const sel = ring.select;
    let taken: RolloutTarget[];
    if ("envs" in sel) taken = remaining.filter((t) => sel.envs.includes(t.env));
    else if ("stacks" in sel) taken = remaining.filter((t) => sel.stacks.includes(t.stack));
    else if ("percent" in sel) {
      const n = Math.ceil((remaining.length * sel.percent) / 100);
      taken = [...remaining].sort((a, b) => (rank(a.stack) < rank(b.stack) ? -1 : 1)).slice(0, n);
    } else taken = remaining;
    const ids = new Set(taken.map((t) => t.stack));
    for (const t of taken) assigned.set(t.stack, i);
    remaining = remaining.filter((t) => !ids.has(t.stack));
  });
  const last = config.rings.length - 1;
  for (const t of remaining) assigned.set(t.stack, last);

  const byRing = config.rings.map(() => [] as string[]);
  for (const t of targets) {
    const pinned = Math.max(-1, ...t.pins.map((p) => ringIndex.get(p)!));
    byRing[Math.max(assigned.get(t.stack)!, pinned)]!.push(t.stack);
  }
  const waves: PlannedWave[] = [];
  config.rings.forEach((ring, i) => {
    const stacks = byRing[i]!.sort();
    if (stacks.length === 0) return;
    waves.push({
      index: waves.length,
      ring: ring.name,
      parallelism: ring.parallelism,
      bakeMs: Math.round(ring.bakeMinutes * 60_000),
      failureBudgetPercent: ring.failureBudgetPercent,
      stacks,
    });
  });
  return waves;
}

/** Failed stacks a wave tolerates before the rollout halts. */
export function failureAllowance(wave: Pick<PlannedWave, "failureBudgetPercent" | "stacks">): number {
  return Math.floor((wave.stacks.length * wave.failureBudgetPercent) / 100);
}

/** The stacks a rollout updates: every cell and dedicated stack of the fleet (platform stacks are deployed by a person). */
export function rolloutTargets(fleet: Pick<Fleet, "stacks" | "tenants" | "platform">): RolloutTarget[] {
  const out: RolloutTarget[] = [];
  for (const [name, file] of fleet.stacks) {
    if (file.ref.kind !== "shared" && file.ref.kind !== "dedicated") continue;
    const pins = [...new Set(tenantsOfStack(fleet as Fleet, name).flatMap((t) => (t.rolloutRing ? [t.rolloutRing] : [])))].sort();
    out.push({ stack: name, env: file.ref.env, pins });
  }
  return out;
}
