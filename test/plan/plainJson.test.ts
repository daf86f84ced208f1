/** plainJson must be exactly what a JSON round trip gives: the engine's view of a property value. */
import fcModule from "fast-check";
import { describe, expect, it } from "vitest";
import { plainJson } from "../../plan/render/plainJson.ts";

const fc = fcModule;

describe("plainJson (the properties the renderer records and the analyzer requests carry)", () => {
  it("equals a JSON.stringify/parse round trip on any JSON-like value with undefined, NaN and dates in it", async () => {
        const leaf = fc.oneof(fc.string(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.date({ noInvalidDate: true }));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: "small" }, leaf, fc.array(tie("v")), fc.dictionary(fc.string(), tie("v"))),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(fc.string(), value), (props) => {
        expect(plainJson(props)).toEqual(JSON.parse(JSON.stringify(props)));
      }),
      { numRuns: 2000 },
    );
  });
});
