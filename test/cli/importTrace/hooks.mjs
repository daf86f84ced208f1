// Loader hooks of the import tracer (register.mjs): they run on the loader thread and append each
// resolved URL to the trace file.
import { appendFileSync } from "node:fs";

let file;

export function initialize(data) {
  file = data.file;
  if (!file) throw new Error("import tracer: IMPORT_TRACE_FILE is not set");
}

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, `${result.url}\n`);
  return result;
}
