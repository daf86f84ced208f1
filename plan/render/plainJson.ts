/** Plain JSON values, as the engine's wire format (protobuf Struct) carries them. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * A property value as JSON would carry it (what the engine sends): object keys whose value is
 * `undefined` (or a function) dropped, array holes and such elements as null, `toJSON` honoured.
 * The same as a JSON.stringify/parse round trip, without building the string.
 */
export function plainJson(v: unknown): Json | undefined {
  if (v === null) return null;
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      // JSON has no -0, NaN or Infinity: "0" and null.
      return Number.isFinite(v) ? (v === 0 ? 0 : v) : null;
    case "object": {
      const withJson = v as { toJSON?: () => unknown };
      if (typeof withJson.toJSON === "function") return plainJson(withJson.toJSON());
      if (Array.isArray(v)) return v.map((x) => plainJson(x) ?? null);
      const out: Record<string, Json> = {};
      for (const [k, x] of Object.entries(v)) {
        const j = plainJson(x);
        if (j === undefined) continue;
        // A "__proto__" key (valid JSON) must stay a key, not replace the prototype.
        if (k === "__proto__") Object.defineProperty(out, k, { value: j, enumerable: true, writable: true, configurable: true });
        else out[k] = j;
      }
      return out;
    }
    default:
      return undefined;
  }
}
