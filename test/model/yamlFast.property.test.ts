/**
 * The fast YAML path (infra/model/yamlFast.ts) against `yaml` itself: whatever it accepts, `yaml`
 * parses with parseYamlMap's options without an error to the same value (same keys in the same
 * order, same types); whatever `yaml` refuses, it declines. Then: the project's own files take the
 * fast path, and a file on the fast path still gets exact lines in its problems.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { parseDocument, stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { loadPlatform } from "../../infra/model/platform.ts";
import { formatProblem, type Problem } from "../../infra/model/problems.ts";
import { parseTenantFile } from "../../infra/model/tenantFile.ts";
import { parseSimpleYamlMap, YAML_OPTIONS } from "../../infra/model/yamlFast.ts";
import { parseWithPositions } from "../../infra/model/yamlFile.ts";

const projectDir = resolve(import.meta.dirname, "../..");

/** The oracle: `yaml` with parseYamlMap's options; undefined when it reports an error or the document is not a mapping. */
function oracle(text: string): unknown {
  const doc = parseDocument(text, YAML_OPTIONS);
  if (doc.errors.length > 0) return undefined;
  const value: unknown = doc.toJS();
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
}

/** Whatever the fast path accepts equals the oracle's value, key order and number signs included. */
let acceptedCount = 0;
function agrees(text: string): boolean {
  const fast = parseSimpleYamlMap(text);
  if (fast === undefined) return true;
  acceptedCount++;
  const slow = oracle(text);
  expect(slow, `yaml refuses what the fast path accepted:\n${text}`).not.toBeUndefined();
  expect(same(fast, slow), `${text}\nfast: ${JSON.stringify(fast)}\nyaml: ${JSON.stringify(slow)}`).toBe(true);
  return true;
}

/**
 * Deep equality with key order, prototypes and Object.is on primitives (vitest's toStrictEqual
 * compares `.constructor`, which a document's own key "constructor" overrides).
 */
function same(a: unknown, b: unknown): boolean {
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return Object.is(a, b);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

// Strings that look like other types, carry YAML indicators, or sit on the edges of plain scalars.
const TRICKY = [
  "", " ", "a", "1", "-1", "+1", "01", "0o17", "0x1F", "1e3", "1.5", ".5", "1.", ".inf", "-.Inf", ".nan", "~", "null", "Null", "NULL", "true", "True",
  "FALSE", "yes", "no", "on", "off", "a:b", "a: b", "a:", ":a", "a #b", "a#b", "#a", "-a", "- a", "--", "---", "...", "a,b", "[a]", "{a}", "a]", "a}",
  "'a'", '"a"', "a'b", 'a"b', "a\\b", "@a", "`a", "&a", "*a", "!a", "|a", ">a", "%a", "?a", "? a", "a  b", "a ", " a", "é", "a\u00a0", "\u00a0a",
  "10.0.0.0/16", "us-east-1a", "2026-01-01T00:00:00Z", "cloud@acme.example", "https://x.example/a?b=c", "__proto__", "constructor", "toString",
  "9007199254740993", "1_000", "0b101", "+.5", "1e", "e1", "a\tb", "a\nb", "a\rb",
];
const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
// Mostly what tenant files hold (so the fast path is exercised), often what trips parsers.
const trickyString = fc.oneof({ arbitrary: word, weight: 6 }, { arbitrary: fc.constantFrom(...TRICKY), weight: 3 }, { arbitrary: fc.string({ maxLength: 8 }), weight: 1 });
const scalar = fc.oneof(
  { arbitrary: trickyString, weight: 6 }, { arbitrary: fc.integer(), weight: 2 }, { arbitrary: fc.double({ noNaN: false }), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 }, { arbitrary: fc.constant(null), weight: 1 },
);
const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { arbitrary: scalar, weight: 4 },
    { arbitrary: fc.array(scalar, { maxLength: 4 }), weight: 2 },
    { arbitrary: fc.array(tie("v"), { maxLength: 3 }), weight: 1 },
    { arbitrary: fc.dictionary(trickyString, tie("v"), { maxKeys: 4 }), weight: 3 },
  ),
})).v;
const documentValue = fc.dictionary(trickyString, value, { minKeys: 1, maxKeys: 6 });

/** How the document is written out: yaml.stringify's own variations (block or flow, quoting, indentation). */
const style = fc.record({
  indent: fc.constantFrom(2, 4),
  indentSeq: fc.boolean(),
  collectionStyle: fc.constantFrom("any", "any", "block", "flow"),
  defaultStringType: fc.constantFrom("PLAIN", "QUOTE_SINGLE", "QUOTE_DOUBLE"),
  flowCollectionPadding: fc.boolean(),
});

const EDIT_CHARS = [" ", "  ", "\t", "#", ":", ": ", "-", "- ", "'", '"', ",", "[", "]", "{", "}", "\n", "\n  ", "\n- ", "&a ", "*a", "!!str ", "|", ">", "?", "\\", "a", "1", "\u00a0", "\r"];
/** A text with random edits: inserted indicators, deleted characters, repeated lines. */
const edited = (text: string) =>
  fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), what: fc.constantFrom(...EDIT_CHARS) }),
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), what: fc.constant("") }),
      fc.record({ kind: fc.constant("dupline" as const), at: fc.nat(), what: fc.constant("") }),
    ),
    { minLength: 1, maxLength: 3 },
  ).map((edits) => {
    let t = text;
    for (const e of edits) {
      const at = t.length === 0 ? 0 : e.at % (t.length + 1);
      if (e.kind === "insert") t = t.slice(0, at) + e.what + t.slice(at);
      else if (e.kind === "delete") t = t.slice(0, at) + t.slice(at + 1);
      else {
        const lines = t.split("\n");
        const i = e.at % lines.length;
        lines.splice(i, 0, lines[i]!);
        t = lines.join("\n");
      }
    }
    return t;
  });

function fleetFiles(): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const dir of ["tenants", "stacks"]) {
    for (const name of readdirSync(join(projectDir, dir)).filter((n) => /\.ya?ml$/.test(n))) {
      out.push({ path: `${dir}/${name}`, text: readFileSync(join(projectDir, dir, name), "utf8") });
    }
  }
  return out;
}

describe("fast path vs yaml", () => {
  it("documents written by yaml.stringify in any style: accepted ones parse to yaml's value", () => {
    acceptedCount = 0;
    fc.assert(fc.property(documentValue, style, (v, opts) => agrees(stringify(v, opts))), { numRuns: 1500 });
    // Not vacuous: a good share of the documents take the fast path (about a fifth when measured).
    expect(acceptedCount).toBeGreaterThan(150);
  });

  it("edited documents (indicators inserted, characters deleted, lines repeated): never accepted when yaml refuses, equal when accepted", () => {
    const base = fc.tuple(documentValue, style).map(([v, opts]) => stringify(v, opts));
    acceptedCount = 0;
    fc.assert(fc.property(base.chain(edited), (text) => agrees(text)), { numRuns: 3000 });
    expect(acceptedCount).toBeGreaterThan(100);
  });

  it("hand-written edge cases: accepted or declined as listed, and equal to yaml when accepted", () => {
    const accepted = [
      "a: 1\nb: true\nc: ~\nd:\ne: 10.0.0.0/16\n",
      "a:\n  - x\n  - 'y''s'\nb: [1, \"two\", {c: d}]\n",
      "a:\n- x\n- y\nb: 2\n",
      "# comment\nid: acme # trailing\nnested:\n  deeper:\n    k: v\n  # between\n  other: {}\n",
      "contact: { email: cloud@acme.example }\nsecrets: []\n",
      "aws:region: us-east-1\nsaas-tenancy:cell:\n  cidr: 10.1.0.0/16\n",
      "startedAt: 2026-01-10T09:00:00Z\nname: a  b\n",
      `deep: ${"[".repeat(32)}${"]".repeat(32)}\n`,
    ];
    for (const text of accepted) {
      expect(parseSimpleYamlMap(text), text).not.toBeUndefined();
      agrees(text);
    }
    const declined = [
      "a: 1\na: 2\n", // duplicate key (yaml: error)
      "a: &x 1\nb: *x\n", // anchors and aliases
      "a: |\n  text\n", // block scalar
      "a: b\n  c\n", // multi-line plain scalar
      "a: [1,\n 2]\n", // multi-line flow
      "---\na: 1\n", // document marker
      "a:\tb\n", // tab
      "a: 1\r\n", // CR
      "1: a\n", // a key that is not a string
      "__proto__: x\n", // would not be an own property
      "? a\n: b\n", // explicit key
      "a: \"x\\ty\"\n", // an escape
      "- a\n- b\n", // not a mapping
      "a: b: c\n", // nested implicit mapping on one line (yaml: error)
      "a: 'x\n", // unterminated quote
      " a: 1\n", // indented root
      "a:\n  b: 1\n c: 2\n", // inconsistent indentation
      "a: [1, ]\n", // trailing comma
      `a: ${"[".repeat(20000)}${"]".repeat(20000)}\n`, // flow nested past MAX_FLOW_DEPTH: declined, not a stack overflow
      `a: ${"[".repeat(33)}${"]".repeat(33)}\n`,
      "a: x #c\n  b: y\n", // a more indented line after an inline value
      "",
    ];
    for (const text of declined) expect(parseSimpleYamlMap(text), JSON.stringify(text)).toBeUndefined();
  });

  it("every tenant and stack file of the example fleet takes the fast path, with yaml's value", () => {
    const files = fleetFiles();
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      expect(parseSimpleYamlMap(f.text), f.path).not.toBeUndefined();
      agrees(f.text);
    }
  });
});

describe("problems of a file on the fast path keep their lines", () => {
  const platform = loadPlatform(projectDir);
  const ctx = { regions: platform.regions, environments: platform.environments };
  const lines = (problems: Problem[]) => problems.map(formatProblem);

  it("a schema problem on line 5 of a well-formed file: the fast path parsed it, the problem says line 5", () => {
    const text = "id: demo\ndisplayName: Demo\ntier: standard\nregion: us-east-1\nenvironments: { prod: { teams: 3 } }\nplacement: { prod: use1-01 }\n";
    expect(parseSimpleYamlMap(text)).not.toBeUndefined();
    const got = parseTenantFile("tenants/demo.yaml", text, ctx, "demo");
    expect(Array.isArray(got) && lines(got)).toEqual(["tenants/demo.yaml:5: environments.prod.teams: expected record, got number 3"]);
    // Negative control: the same problem through the full parse reports the same line.
    const full = parseWithPositions("tenants/demo.yaml", text);
    expect(Array.isArray(full) ? undefined : full.lineOf(["environments", "prod", "teams"])).toBe(5);
  });

  it("a file the fast path declines (a duplicate key) gets yaml's own error at its line", () => {
    const text = "id: demo\ndisplayName: Demo\ntier: standard\ntier: free\n";
    expect(parseSimpleYamlMap(text)).toBeUndefined();
    const got = parseTenantFile("tenants/demo.yaml", text, ctx, "demo");
    expect(Array.isArray(got) && lines(got)).toEqual(["tenants/demo.yaml:4: (document): YAML syntax error: Map keys must be unique; fix the YAML at this line"]);
  });
});
