import { LineCounter, parseDocument, isMap, isNode, isScalar, isSeq, visit, type Node } from "yaml";
import { formatPath, type Problem } from "./problems.ts";
import { parseSimpleYamlMap, YAML_OPTIONS } from "./yamlFast.ts";

/** Tenant and stack files are small; anything larger is a mistake or an attack. */
export const MAX_FILE_BYTES = 64 * 1024;
/** yaml's default is 100; a tenant file has no reason to use aliases at all, so keep it small. */
export const MAX_ALIAS_COUNT = 20;

export interface YamlFile {
  file: string;
  value: unknown;
  /** 1-based line of the node at `path`, or of its nearest existing ancestor. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/** The problem for a file over MAX_FILE_BYTES (reported before it is read or parsed). */
export function tooLargeProblem(file: string): Problem {
  return {
    file,
    line: 1,
    path: "",
    message: `file is larger than ${MAX_FILE_BYTES} bytes; tenant and stack files are a few hundred bytes: remove what does not belong in it`,
  };
}

/**
 * Parses one YAML mapping. Returns problems instead of throwing. A file in the plain subset tenant
 * and stack files are written in (yamlFast.ts) is parsed without building a Document, and parsed
 * again with positions only when a problem asks for a line (lineOf): a fleet of thousands of valid
 * files never pays for positions. Anything else is parsed with positions at once, and every YAML
 * problem is reported from that parse.
 */
export function parseYamlMap(file: string, text: string): YamlFile | Problem[] {
  if (Buffer.byteLength(text, "utf8") > MAX_FILE_BYTES) return [tooLargeProblem(file)];
  const value = parseSimpleYamlMap(text);
  if (value !== undefined) {
    let positioned: YamlFile | undefined;
    const lineOf = (path: readonly PropertyKey[]): number | undefined => {
      if (!positioned) {
        const y = parseWithPositions(file, text);
        // Unreachable (the fast path declines what yaml refuses: test/model/yamlFast.property.test.ts);
        // a problem without a line is still a problem.
        if (Array.isArray(y)) return undefined;
        positioned = y;
      }
      return positioned.lineOf(path);
    };
    return { file, value, lineOf };
  }
  return parseWithPositions(file, text);
}

/** parseYamlMap with `yaml`'s Document and a LineCounter: every syntax problem, and lines for every path. */
export function parseWithPositions(file: string, text: string): YamlFile | Problem[] {
  const lineCounter = new LineCounter();
  // logLevel "error": yaml must never print warnings to the user's terminal (stderr is for problems).
  const doc = parseDocument(text, { lineCounter, ...YAML_OPTIONS });
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);
  const first = doc.errors[0];
  if (first) {
    // Only the first: later syntax errors are usually consequences of it.
    const multi = first.code === "MULTIPLE_DOCS";
    return [{
      file,
      line: first.linePos?.[0]?.line ?? lineAt(first.pos[0]),
      path: "",
      message: multi
        ? "YAML syntax error: the file holds more than one YAML document; a tenant or stack file is one mapping: remove the extra ---"
        : `YAML syntax error: ${first.message.split("\n")[0]}; fix the YAML at this line`,
    }];
  }
  if (doc.contents === null) {
    return [{ file, line: 1, path: "", message: "file is empty; write the tenant's keys (see tenants/tenant.schema.json) or delete the file" }];
  }
  if (!isMap(doc.contents)) {
    const kind = isSeq(doc.contents) ? "a list" : "a scalar";
    return [{ file, line: lineAt(doc.contents.range?.[0]), path: "", message: `expected a mapping of keys (key: value lines), found ${kind}` }];
  }
  // A mapping or list used as a key (`? [a]`) has no JSON form; refuse it rather than stringify it.
  let complexKey: number | undefined;
  visit(doc, {
    Pair(_key, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        complexKey = (pair.key as Node).range?.[0] ?? 0;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (complexKey !== undefined) {
    return [{ file, line: lineAt(complexKey), path: "", message: "a key is a list or mapping; keys are plain names (key: value)" }];
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    const reason = (err as Error).message.split("\n")[0] ?? "";
    if (!/alias count/i.test(reason)) {
      return [{ file, line: 1, path: "", message: `YAML error: ${reason}; tenant and stack files need no anchors or aliases: write the values out` }];
    }
    // yaml throws on alias expansion beyond maxAliasCount ("billion laughs"); point at the first alias.
    let firstAlias: number | undefined;
    visit(doc, {
      Alias(_key, node) {
        firstAlias = node.range?.[0];
        return visit.BREAK;
      },
    });
    return [{
      file,
      line: lineAt(firstAlias),
      path: "",
      message: `YAML aliases expand to too many nodes (limit ${MAX_ALIAS_COUNT}: ${reason}); tenant and stack files need no anchors or aliases: write the values out`,
    }];
  }
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    for (let n = path.length; n > 0; n--) {
      // Prefer the line of the key (`prod:`) over its value, which for a block mapping starts a line later.
      const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true);
      const key = path[n - 1];
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isNode(it.key) && String((it.key as { value?: unknown }).value) === String(key));
        const keyNode = pair?.key as Node | undefined;
        if (keyNode?.range) return lineAt(keyNode.range[0]);
      } else if (isSeq(parent) && typeof key === "number") {
        const item = parent.items[key];
        if (isNode(item) && item.range) return lineAt(item.range[0]);
      }
    }
    const root = doc.contents;
    return isNode(root) && root.range ? lineAt(root.range[0]) : undefined;
  };
  return { file, value, lineOf };
}

export function problemAt(y: YamlFile, path: readonly PropertyKey[], message: string): Problem {
  const line = y.lineOf(path);
  return line === undefined ? { file: y.file, path: formatPath(path), message } : { file: y.file, line, path: formatPath(path), message };
}

/** The raw (parsed, pre-validation) value at `path`, and whether it is there at all. */
export function rawValueAt(value: unknown, path: readonly PropertyKey[]): { found: boolean; value?: unknown } {
  let cur: unknown = value;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return { found: false };
    if (Array.isArray(cur)) {
      if (typeof k !== "number" || k >= cur.length) return { found: false };
      cur = cur[k];
    } else {
      if (!Object.prototype.hasOwnProperty.call(cur, k)) return { found: false };
      cur = (cur as Record<PropertyKey, unknown>)[k];
    }
  }
  return { found: true, value: cur };
}
