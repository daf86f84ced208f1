import { LineCounter, parseDocument, isMap, isNode, type Document, type Node } from "yaml";
import { formatPath, type Problem } from "./problems.ts";

/** Tenant and stack files are small; anything larger is a mistake or an attack. */
export const MAX_FILE_BYTES = 64 * 1024;
/** yaml's default is 100; a tenant file has no reason to use aliases at all, so keep it small. */
export const MAX_ALIAS_COUNT = 20;

export interface YamlFile {
  file: string;
  doc: Document;
  value: unknown;
  /** 1-based line of the node at `path`, or of its nearest existing ancestor. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/** Parses one YAML mapping, keeping positions. Returns problems instead of throwing. */
export function parseYamlMap(file: string, text: string): YamlFile | Problem[] {
  if (Buffer.byteLength(text, "utf8") > MAX_FILE_BYTES) {
    return [{ file, path: "", message: `file is larger than ${MAX_FILE_BYTES} bytes; tenant and stack files are small` }];
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  const errors = doc.errors.map((e): Problem => ({
    file,
    line: e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line,
    path: "",
    message: `YAML syntax error: ${e.message.split("\n")[0]}`,
  }));
  if (errors.length > 0) return errors;
  if (doc.contents === null) return [{ file, path: "", message: "file is empty; expected a mapping of keys" }];
  if (!isMap(doc.contents)) {
    const kind = isNode(doc.contents) && "items" in doc.contents ? "a list" : "a scalar";
    return [{ file, line: 1, path: "", message: `expected a mapping of keys, found ${kind}` }];
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    return [{ file, path: "", message: `YAML rejected: ${(err as Error).message.split("\n")[0]}` }];
  }
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as Node | undefined;
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      if (n > 0) {
        // The key itself exists even when its value is null.
        const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true);
        if (isMap(parent)) {
          const pair = parent.items.find((it) => isNode(it.key) && (it.key as { value?: unknown }).value === path[n - 1]);
          const key = pair?.key as Node | undefined;
          if (key?.range) return lineCounter.linePos(key.range[0]).line;
        }
      }
    }
    return undefined;
  };
  return { file, doc, value, lineOf };
}

export function problemAt(y: YamlFile, path: readonly PropertyKey[], message: string): Problem {
  const line = y.lineOf(path);
  return line === undefined ? { file: y.file, path: formatPath(path), message } : { file: y.file, line, path: formatPath(path), message };
}
