// Import tracer for tests (`node --import <this file> ...`): records the URL of every module the
// process resolves through the ES module loader, one a line, in the file named by
// IMPORT_TRACE_FILE. Plain JavaScript so it runs before any TypeScript loader.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url, { data: { file: process.env.IMPORT_TRACE_FILE } });
