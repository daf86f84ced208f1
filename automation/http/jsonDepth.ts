/**
 * JSON bodies nested deeper than MAX_JSON_DEPTH are refused with 400 before they are parsed
 * (docs/security.md): a deeply nested document overflows the stack of the code that walks it
 * and answered 500.
 */
import type { FastifyInstance } from "fastify";
import { HttpError } from "./errors.ts";

/** No request of this API nests deeper than a tenant document (about 6 levels). */
export const MAX_JSON_DEPTH = 32;

/** The deepest nesting of objects and arrays in `text`, stopping once past `limit`. */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** Replaces the scope's JSON parser with fastify's own (prototype poisoning refused) behind the depth check. */
export function limitJsonDepth(scope: FastifyInstance): void {
  const parse = scope.getDefaultJsonParser("error", "error");
  scope.removeContentTypeParser("application/json");
  scope.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (jsonDepth(text) > MAX_JSON_DEPTH) {
      done(new HttpError(400, `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels; no request of this API needs that`), undefined);
      return;
    }
    // fastify's default JSON parser answers through `done` and returns nothing (lib/content-type-parser.js,
    // defaultJsonParser); its type is the union with the async parser form, hence `void`.
    void parse(request, text, done);
  });
}
