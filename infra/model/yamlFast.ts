/**
 * The fast path of parseYamlMap (yamlFile.ts): a parser for the small subset of YAML that tenant
 * and stack files are written in, producing the same value `yaml` would, without building a
 * Document (nodes, ranges, comments) for each of a fleet's thousands of files. It accepts only
 * what it is sure of and returns undefined for anything else, and the caller then parses with
 * `yaml` itself (positions, every syntax error). test/model/yamlFast.property.test.ts checks that
 * whatever it accepts, `yaml` (with the options of parseYamlMap) parses without error to an equal
 * value, and that it declines what `yaml` refuses.
 *
 * The subset: block mappings and block sequences of scalars, indented with spaces, one entry a
 * line; single-line flow collections (`{ a: b, c: [d] }`); plain scalars of ordinary characters;
 * single-quoted strings; double-quoted strings without escapes; `#` comments. Not in it (declined):
 * tabs, CR, control characters, a BOM, document markers and directives, anchors, aliases, tags,
 * block scalars (`|`, `>`), multi-line scalars or flow collections, `?` keys, keys that are not
 * strings (`1:`, `true:`), duplicate keys, `__proto__`.
 *
 * Plain scalars resolve through the tags of the schema `yaml` uses for these files (core schema,
 * YAML 1.2: null, booleans, ints, floats), so `10` is a number and `10.0.0.0/16` a string exactly
 * as there; a scalar that resolves to anything but a string, number, boolean or null is declined.
 */
import { isScalar, parseDocument, type ParseOptions, type DocumentOptions, type SchemaOptions } from "yaml";

/** The options parseYamlMap parses with (yamlFile.ts), shared so both paths resolve scalars alike. */
export const YAML_OPTIONS = { uniqueKeys: true, prettyErrors: false, strict: true, logLevel: "error" } as const satisfies ParseOptions & DocumentOptions & SchemaOptions;

interface ScalarTagLike {
  default?: boolean | "key";
  test?: RegExp;
  resolve?: (value: string, onError: (message: string) => void, options: ParseOptions) => unknown;
}

/** The implicit scalar tags (tested in order, as `yaml`'s composer does) of the schema parseYamlMap uses. */
const IMPLICIT_TAGS: readonly ScalarTagLike[] = (parseDocument("", YAML_OPTIONS).schema.tags as ScalarTagLike[]).filter(
  (t) => t.default === true && t.test instanceof RegExp && typeof t.resolve === "function",
);

/** Declined: the caller parses with `yaml`. */
class Decline extends Error {}
const DECLINE = new Decline();

type Value = string | number | boolean | null | Value[] | { [key: string]: Value };

/** Characters anywhere in the file that send it to the full parser. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this must find
const REFUSED_CHARS = /[\t\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff]/;
/** A plain scalar's first character (no indicator: - ? : , [ ] { } # & * ! | > ' " % @ `). */
const PLAIN_FIRST = /[A-Za-z0-9_.~/$(+]/;
/** A plain scalar's other characters in block context (after the comment is cut off). */
const PLAIN_BLOCK = /^[A-Za-z0-9_.~/$()+=,;:@ \u00a0-\ud7ff\ue000-\ufffd-]*$/;
/** In flow context: no flow indicators, and no `:` at all (`a:b` and `a: b` differ there). */
const PLAIN_FLOW = /^[A-Za-z0-9_.~/$()+=;@ \u00a0-\ud7ff\ue000-\ufffd-]*$/;
/** yaml refuses an implicit key longer than 1,024 characters; far below, to be sure. */
const MAX_KEY = 512;
/** Flow collections nested deeper than this are left to yaml (recursion here must stay shallow). */
const MAX_FLOW_DEPTH = 32;

function resolvePlain(text: string): string | number | boolean | null {
  for (const tag of IMPLICIT_TAGS) {
    if (!tag.test!.test(text)) continue;
    let failed = false;
    const resolved = tag.resolve!(text, () => (failed = true), YAML_OPTIONS);
    // Some tags resolve to a Scalar node (null, booleans, floats); toJS takes its value.
    const v = isScalar(resolved) ? resolved.value : resolved;
    if (failed) throw DECLINE;
    if (v === null || typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && !Number.isNaN(v))) return v;
    throw DECLINE;
  }
  return text;
}

function plainScalar(text: string, flow: boolean): string | number | boolean | null {
  if (text === "" || !PLAIN_FIRST.test(text[0]!) || !(flow ? PLAIN_FLOW : PLAIN_BLOCK).test(text)) throw DECLINE;
  if (text.includes(": ") || text.endsWith(":") || text.endsWith(" ")) throw DECLINE;
  return resolvePlain(text);
}

/** A quoted scalar starting at `s[i]`: its value and the index after the closing quote. */
function quoted(s: string, i: number): [string, number] {
  const q = s[i];
  if (q === '"') {
    const end = s.indexOf('"', i + 1);
    if (end < 0) throw DECLINE;
    const body = s.slice(i + 1, end);
    if (body.includes("\\")) throw DECLINE;
    return [body, end + 1];
  }
  let out = "";
  let j = i + 1;
  for (;;) {
    const end = s.indexOf("'", j);
    if (end < 0) throw DECLINE;
    out += s.slice(j, end);
    if (s[end + 1] === "'") {
      out += "'";
      j = end + 2;
    } else return [out, end + 1];
  }
}

/** What may follow a value on its line: spaces, then nothing or a comment. */
function assertTail(s: string, i: number): void {
  const rest = s.slice(i);
  if (/^ *$/.test(rest)) return;
  if (!/^ +#/.test(rest)) throw DECLINE;
}

/** A key of a mapping: a string that is not `__proto__` (an own property name in the result). */
function checkKey(key: string, into: Record<string, Value>): string {
  if (key === "__proto__" || key.length > MAX_KEY || Object.prototype.hasOwnProperty.call(into, key)) throw DECLINE;
  return key;
}

/** A flow collection or flow scalar at s[i] (one line): its value and the index after it. */
function flowValue(s: string, i: number, depth = 0): [Value, number] {
  const c = s[i];
  if (c === "{" || c === "[") return flowCollection(s, i, depth + 1);
  if (c === '"' || c === "'") return quoted(s, i);
  let j = i;
  while (j < s.length && !",[]{}".includes(s[j]!)) j++;
  return [plainScalar(trimSpaces(s.slice(i, j)), true), j];
}

/** Trailing spaces off (only spaces: String.trimEnd would also take characters YAML keeps, like U+00A0). */
function trimSpaces(s: string): string {
  let end = s.length;
  while (end > 0 && s[end - 1] === " ") end--;
  return s.slice(0, end);
}

function skipSpaces(s: string, i: number): number {
  while (s[i] === " ") i++;
  return i;
}

function flowCollection(s: string, start: number, depth: number): [Value, number] {
  if (depth > MAX_FLOW_DEPTH) throw DECLINE;
  const isMap = s[start] === "{";
  const close = isMap ? "}" : "]";
  const map: Record<string, Value> = {};
  const seq: Value[] = [];
  let i = skipSpaces(s, start + 1);
  if (s[i] === close) return [isMap ? map : seq, i + 1];
  for (;;) {
    if (isMap) {
      let key: string;
      if (s[i] === '"' || s[i] === "'") [key, i] = quoted(s, i);
      else {
        const colon = s.indexOf(": ", i);
        if (colon < 0) throw DECLINE;
        const text = s.slice(i, colon);
        const k = plainScalar(text, true);
        if (typeof k !== "string") throw DECLINE;
        key = k;
        i = colon;
      }
      if (s[i] !== ":" || s[i + 1] !== " ") throw DECLINE;
      i = skipSpaces(s, i + 2);
      if (s[i] === "," || s[i] === close || i >= s.length) throw DECLINE;
      const [v, next] = flowValue(s, i, depth);
      map[checkKey(key, map)] = v;
      i = skipSpaces(s, next);
    } else {
      if (s[i] === "," || s[i] === close || i >= s.length) throw DECLINE;
      const [v, next] = flowValue(s, i, depth);
      seq.push(v);
      i = skipSpaces(s, next);
    }
    if (s[i] === close) return [isMap ? map : seq, i + 1];
    if (s[i] !== ",") throw DECLINE;
    i = skipSpaces(s, i + 1);
    // A trailing comma (`[a, ]`) and an implicit key in a flow sequence are declined.
    if (s[i] === close || s[i] === ",") throw DECLINE;
  }
}

/** A value that starts on its key's line (after `key: ` or `- `): scalar or flow collection, to the end of the line. */
function inlineValue(s: string): Value {
  const c = s[0]!;
  if (c === "{" || c === "[" || c === '"' || c === "'") {
    const [v, end] = flowValue(s, 0);
    assertTail(s, end);
    return v;
  }
  const hash = s.indexOf(" #");
  return plainScalar(trimSpaces(hash < 0 ? s : s.slice(0, hash)), false);
}

interface Line {
  indent: number;
  text: string;
}

class Lines {
  private i = 0;
  constructor(private readonly lines: readonly Line[]) {}
  peek(): Line | undefined {
    return this.lines[this.i];
  }
  next(): Line {
    return this.lines[this.i++]!;
  }
  done(): boolean {
    return this.i >= this.lines.length;
  }
}

const isSeqItem = (text: string) => text === "-" || text.startsWith("- ");

/** A block mapping whose keys are at `indent`. */
function blockMap(lines: Lines, indent: number): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (let line = lines.peek(); line && line.indent >= indent; line = lines.peek()) {
    if (line.indent > indent || isSeqItem(line.text)) throw DECLINE;
    lines.next();
    const t = line.text;
    let key: string;
    let rest: string;
    if (t[0] === '"' || t[0] === "'") {
      const [k, end] = quoted(t, 0);
      if (t[end] !== ":" || (end + 1 < t.length && t[end + 1] !== " ")) throw DECLINE;
      key = k;
      rest = t.slice(end + 1);
    } else {
      const m = /:(?: |$)/.exec(t);
      if (!m) throw DECLINE;
      const k = t.slice(0, m.index);
      if (!/^[A-Za-z0-9_]/.test(k) || k.includes(" #")) throw DECLINE;
      const resolved = plainScalar(k, false);
      if (typeof resolved !== "string") throw DECLINE;
      key = resolved;
      rest = t.slice(m.index + 1);
    }
    checkKey(key, out);
    const value = trimSpaces(rest.slice(skipSpaces(rest, 0)));
    if (value === "" || value.startsWith("#")) {
      if (value.startsWith("#") && !rest.startsWith(" ")) throw DECLINE;
      const child = lines.peek();
      if (child && child.indent > indent) out[key] = isSeqItem(child.text) ? blockSeq(lines, child.indent) : blockMap(lines, child.indent);
      else if (child && child.indent === indent && isSeqItem(child.text)) out[key] = blockSeq(lines, indent);
      else out[key] = null;
    } else {
      out[key] = inlineValue(value);
      // A more indented line after an inline value continues it (a multi-line scalar) or is an error.
      const after = lines.peek();
      if (after && after.indent > indent) throw DECLINE;
    }
  }
  return out;
}

/** A block sequence of inline values whose dashes are at `indent`. */
function blockSeq(lines: Lines, indent: number): Value[] {
  const out: Value[] = [];
  for (let line = lines.peek(); line && line.indent === indent && isSeqItem(line.text); line = lines.peek()) {
    lines.next();
    const item = line.text.slice(skipSpaces(line.text, 1));
    // Nested blocks, compact mappings (`- a: b`) and empty items are left to yaml.
    if (item === "" || item.startsWith("#") || item.startsWith("-") || /:(?: |$)/.test(item)) throw DECLINE;
    out.push(inlineValue(item));
    const after = lines.peek();
    if (after && after.indent > indent) throw DECLINE;
  }
  const after = lines.peek();
  if (after && after.indent > indent) throw DECLINE;
  return out;
}

/**
 * The value of a tenant or stack file's text when it is a non-empty mapping within the subset
 * above, or undefined (parse it with `yaml`).
 */
export function parseSimpleYamlMap(text: string): Record<string, unknown> | undefined {
  if (REFUSED_CHARS.test(text)) return undefined;
  const lines: Line[] = [];
  for (const raw of text.split("\n")) {
    const indent = skipSpaces(raw, 0);
    const body = trimSpaces(raw.slice(indent));
    if (body === "" || body.startsWith("#")) continue;
    // Document markers and directives, at the start of a line.
    if (indent === 0 && (body.startsWith("---") || body.startsWith("...") || body.startsWith("%"))) return undefined;
    lines.push({ indent, text: body });
  }
  if (lines.length === 0 || lines[0]!.indent !== 0) return undefined;
  try {
    const reader = new Lines(lines);
    const value = blockMap(reader, 0);
    return reader.done() ? value : undefined;
  } catch (err) {
    if (err instanceof Decline) return undefined;
    throw err;
  }
}
