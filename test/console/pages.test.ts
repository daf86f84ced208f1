/**
 * The console's pure parts, without a browser: escaping of every value put into a page, the fleet
 * view built from the example fleet (opening cells marked), and the fleet map's search.
 */
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { html } from "../../automation/console/html.ts";
import { fleetMap } from "../../automation/console/pages/fleet.ts";
import { fleetView } from "../../automation/http/routes/fleet.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";

const PROJECT = resolve(import.meta.dirname, "../..");

describe("console html", () => {
  it("escapes values, keeps nested templates, drops null/undefined/false", () => {
    const evil = `"><script>alert('x')</script>&`;
    expect(html`<p title="${evil}">${evil}</p>`.text).toBe(`<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>`);
    expect(html`<ul>${["a<", "b"].map((x) => html`<li>${x}</li>`)}</ul>`.text).toBe("<ul><li>a&lt;</li><li>b</li></ul>");
    expect(html`${null}${undefined}${false}${0}`.text).toBe("0");
  });
});

describe("fleet view and map", () => {
  const fleet = requireFleet({ projectDir: PROJECT });

  it("marks a cell opened at the reserve as opening, and only that one", () => {
    const opened: Fleet = { ...fleet, cells: new Map([...fleet.cells].map(([k, c]) => [k, k === "shared-prod-use1-02" ? { ...c, config: { ...c.config, opening: true } } : c])) };
    const cells = (f: Fleet) => fleetView(f, "main").regions.flatMap((r) => r.envs.flatMap((e) => e.cells.map((c) => [c.stack, c.opening])));
    expect(cells(fleet).filter(([, o]) => o)).toEqual([]);
    expect(cells(opened).filter(([, o]) => o)).toEqual([["shared-prod-use1-02", true]]);
    expect(fleetMap(fleetView(opened, "main"), "").text).toMatch(/<h4 id="cell-shared-prod-use1-02">Cell use1-02 <span class="sub">shared-prod-use1-02<\/span> <span class="tag life">opening<\/span><\/h4>/);
  });

  it("search keeps the matching tenants (by id or name) and the cells holding them", () => {
    const view = fleetView(fleet, "main");
    const ids = (q: string) => [...fleetMap(view, q).text.matchAll(/data-tenant="([^"]+)"/g)].map((m) => m[1]);
    expect(ids("gamma")).toEqual(["gamma-labs", "gamma-labs"]);
    expect(ids("acme corp")).toEqual(["acme"]);
    expect(ids("nobody-at-all")).toEqual([]);
    expect(fleetMap(view, "gamma").text).toContain("2 of 12 tenant placements match “gamma”");
    expect(ids("").length).toBe(12);
  });
});
