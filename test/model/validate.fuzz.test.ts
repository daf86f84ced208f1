/**
 * Fuzz: `tenantctl validate` over randomly mutated tenant (and stack) files never throws, never
 * reports an internal error, exits 0 or 1, and on 1 prints only well-formed problem lines
 * `<file>:<line>: <yaml path>: <message>` that point into a real file.
 */
import { readdirSync } from "node:fs";
import fc from "fast-check";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FleetCopy } from "../cli/fleetCopy.ts";

let fleet: FleetCopy;
let originals: Map<string, string>;
let tenantFiles: string[];
let stackFiles: string[];

beforeAll(() => {
  fleet = new FleetCopy();
  tenantFiles = readdirSync(fleet.path("tenants")).filter((f) => f.endsWith(".yaml")).map((f) => `tenants/${f}`);
  stackFiles = readdirSync(fleet.path("stacks")).map((f) => `stacks/${f}`);
  originals = new Map([...tenantFiles, ...stackFiles].map((f) => [f, fleet.read(f)]));
});
afterAll(() => fleet.cleanup());

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path (list of keys/indices) inside a parsed document, the root excluded. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...paths(v, [...prefix, i])]);
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
  }
  return [];
}

function parentOf(root: unknown, path: (string | number)[]): Record<string | number, unknown> | undefined {
  let cur: unknown = root;
  for (const k of path.slice(0, -1)) {
    if (!cur || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur && typeof cur === "object" ? (cur as Record<string | number, unknown>) : undefined;
}

type Op =
  | { kind: "delete"; at: number }
  | { kind: "set"; at: number; value: Json }
  | { kind: "swapType"; at: number }
  | { kind: "add"; at: number; key: string; value: Json };

/** A value of another type than `v`, the kind of mistake a person makes: quotes, lists, numbers. */
function swapType(v: unknown): Json {
  if (typeof v === "string") return v.length;
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), x as Json]));
  if (v && typeof v === "object") return Object.keys(v);
  return "null";
}

function applyOps(doc: unknown, ops: Op[]): unknown {
  for (const op of ops) {
    const all = paths(doc);
    if (all.length === 0) break;
    const path = all[op.at % all.length]!;
    const parent = parentOf(doc, path);
    if (!parent) continue;
    const key = path[path.length - 1]!;
    if (op.kind === "delete") {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
    } else if (op.kind === "set") parent[key] = op.value;
    else if (op.kind === "swapType") parent[key] = swapType(parent[key]);
    else {
      const target = parent[key];
      // An own property even for "__proto__" (a key a hostile file may hold): plain assignment
      // would replace the prototype and corrupt the document instead of adding a key.
      const own = (o: object) => Object.defineProperty(o, op.key, { value: op.value, enumerable: true, writable: true, configurable: true });
      if (target && typeof target === "object" && !Array.isArray(target)) own(target);
      else own(parent);
    }
  }
  return doc;
}

const scalarish = fc.oneof(
  fc.string(),
  fc.constantFrom("", "..", "../x", "a/b", "Admin", "sup port", "prod", "use1-01", "10.64.0.0/16", "10.0.0.1/16", "dedicated", "pooled", "free", "enterprise", "www", "2026-01-01T00:00:00Z"),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const jsonValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: scalarish },
  { weight: 1, arbitrary: fc.array(scalarish, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), scalarish, { maxKeys: 3 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: jsonValue }),
  fc.record({ kind: fc.constant("swapType" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("add" as const),
    at: fc.nat(),
    key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("deployment", "placement", "dedicated", "migration", "qa", "__proto__", "a.b", "x: y")),
    value: jsonValue,
  }),
);

/** Characters that matter to YAML's grammar, to reach the parser's corners more often than uniform text. */
const yamlText = fc.string({ unit: fc.constantFrom(..."abc01 :-[]{},&*!|>'\"#%@`?\n\t\\~.=/".split("")), maxLength: 200 });

const mutation = fc.oneof(
  // Structural: delete keys, set random values, swap types, add keys; then written back as YAML.
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("structural" as const), file: fc.nat(), ops: fc.array(opArb, { minLength: 1, maxLength: 4 }) }) },
  // Random text replacing the whole file.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("text" as const), file: fc.nat(), text: fc.oneof(yamlText, fc.string({ unit: "binary", maxLength: 200 })) }) },
  // A splice of random text into the real file (truncation, garbage lines, broken indentation).
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("splice" as const), file: fc.nat(), at: fc.nat(), drop: fc.nat({ max: 40 }), insert: yamlText }),
  },
);

type M = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(m: M, files: string[]): { file: string; text: string } {
  const file = files[m.file % files.length]!;
  const original = originals.get(file)!;
  if (m.kind === "text") return { file, text: m.text };
  if (m.kind === "splice") {
    const at = m.at % (original.length + 1);
    return { file, text: original.slice(0, at) + m.insert + original.slice(at + m.drop) };
  }
  const doc = applyOps(parse(original) as unknown, m.ops);
  return { file, text: `# yaml-language-server: $schema=./tenant.schema.json\n${stringify(doc)}` };
}

const LINE = /^(.+?):(\d+): (.+?): (.+)$/;

async function checkValidate(file: string, text: string): Promise<void> {
  fleet.write(file, text);
  try {
    const r = await fleet.run(["validate"]);
    const context = `mutated ${file}:\n${text}\n--- stderr:\n${r.stderr.join("\n")}`;
    expect([0, 1], context).toContain(r.code);
    for (const line of [...r.stdout, ...r.stderr]) {
      expect(line, context).not.toMatch(/internal error|\n\s+at |^\s+at /);
    }
    if (r.code === 0) {
      expect(r.stderr, context).toEqual([]);
      return;
    }
    expect(r.stderr.length, context).toBeGreaterThan(0);
    for (const line of r.stderr) {
      expect(line, context).not.toContain("\n");
      const m = LINE.exec(line);
      expect(m, `${line}\n${context}`).not.toBeNull();
      const [, shown, lineNo] = m!;
      const rel = [...originals.keys()].find((f) => shown === fleet.shown(f));
      expect(rel, `${line} names a file of the fleet`).toBeDefined();
      const lines = (rel === file ? text : originals.get(rel!)!).split("\n").length;
      expect(Number(lineNo)).toBeGreaterThanOrEqual(1);
      expect(Number(lineNo), line).toBeLessThanOrEqual(lines);
    }
  } finally {
    fleet.write(file, originals.get(file)!);
  }
}

describe("validate never throws on mutated files", () => {
  it("the unmutated copy validates (so failures below come from the mutations)", async () => {
    expect((await fleet.run(["validate"])).code).toBe(0);
  });

  it("mutated tenant files", async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const { file, text } = mutate(m, tenantFiles);
        await checkValidate(file, text);
      }),
      {
        numRuns: 250,
        // Once found by a random seed: a "__proto__" key added to a list.
        examples: [[{ kind: "structural", file: 0, ops: [{ kind: "add", at: 133182107, key: "__proto__", value: {} }, { kind: "swapType", at: 0 }] }]],
      },
    );
  });

  it("mutated stack files", async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const { file, text } = mutate(m, stackFiles);
        await checkValidate(file, text);
      }),
      { numRuns: 100 },
    );
  });

  it("mutations are not all no-ops: a good share of them is reported as problems", async () => {
    let failing = 0;
    const samples = fc.sample(mutation, { numRuns: 60, seed: 42 });
    for (const m of samples) {
      const { file, text } = mutate(m, tenantFiles);
      fleet.write(file, text);
      if ((await fleet.run(["validate"])).code === 1) failing++;
      fleet.write(file, originals.get(file)!);
    }
    expect(failing).toBeGreaterThan(samples.length / 3);
  });
});
