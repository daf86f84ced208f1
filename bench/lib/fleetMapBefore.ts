/**
 * The console fleet map's markup and chip styles as they were before the compact map (commit
 * d81ddae, automation/console/pages/fleet.ts and assets/console.css): kept only as the
 * console-fleet-map bench's same-run baseline (BENCHMARKS.md section 9). Five elements, a data
 * attribute and absolute links per tenant chip; 210 KB for 1,100 tenants. Not used by the console.
 */
import { html, type Html } from "../../automation/console/html.ts";
import type { FleetTenant, FleetView } from "../../automation/http/routes/fleet.ts";

const enc = encodeURIComponent;

/** The chip rules the previous markup used (appended to the console's stylesheet for the baseline). */
export const CHIP_CSS_BEFORE = `
.residents { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap; gap: 4px; }
.tenant { border-left: 6px solid var(--line); padding: 2px 6px; background: #f6f8fa; }
.tier-free { border-color: #8c959f; } .tier-standard { border-color: #0969da; } .tier-enterprise { border-color: #8250df; } .tier-dedicated { border-color: #bf3989; }
.tag.tier-free, .tag.tier-standard, .tag.tier-enterprise, .tag.tier-dedicated { border-left-width: 6px; }
.life-suspended { background: #fff4d6; } .life-offboarding { background: #ffe3e3; } .life-migrating { background: #e6f0ff; }
`;

function tenantChip(t: FleetTenant): Html {
  const state = t.migrating ? "migrating" : t.lifecycle;
  return html`<li class="tenant tier-${t.tier} life-${state}" data-tenant="${t.id}"><a href="/console/tenants/${enc(t.id)}">${t.id}</a> <span class="sub">${t.displayName}</span> <span class="tag">${t.tier}</span>${state !== "active" ? html` <span class="tag life">${state}</span>` : ""}</li>`;
}

/** The whole fleet (no search), as the previous fleetMap rendered it. */
export function fleetMapBefore(view: FleetView): Html {
  const total = view.regions.reduce((n, r) => n + r.envs.reduce((m, e) => m + e.dedicated.length + e.cells.reduce((k, c) => k + c.residents.length, 0), 0), 0);
  const regions = view.regions.map((r) => {
    const envs = r.envs.map((e) => {
      const cells = e.cells.map((c) => {
        const used = c.residents.length;
        const pct = c.capacity > 0 ? Math.min(100, Math.round((used / c.capacity) * 100)) : 100;
        return html`<section class="cell" aria-labelledby="cell-${c.stack}" data-stack="${c.stack}">
<h4 id="cell-${c.stack}">Cell ${c.id} <span class="sub">${c.stack}</span>${c.opening ? html` <span class="tag life">opening</span>` : ""}</h4>
<p class="capacity"><label for="cap-${c.stack}">${used} of ${c.capacity} places used</label>
<meter id="cap-${c.stack}" min="0" max="${c.capacity}" low="${Math.floor(c.capacity * 0.7)}" high="${Math.floor(c.capacity * 0.9)}" optimum="0" value="${used}">${pct}%</meter></p>
<ul class="residents">${c.residents.map(tenantChip)}</ul>
<p><a href="/console/stacks/${enc(c.stack)}/run">Run ${c.stack}</a></p>
</section>`;
      });
      return html`<section class="env" aria-labelledby="env-${r.region}-${e.env}">
<h3 id="env-${r.region}-${e.env}">${e.env}</h3>
<div class="cells">${cells}</div>
${e.dedicated.length > 0 ? html`<section class="dedicated" aria-label="Dedicated stacks in ${r.region} ${e.env}"><h4>Dedicated stacks</h4><ul class="residents">${e.dedicated.map((d) => html`${tenantChip(d)}`)}</ul></section>` : ""}
</section>`;
    });
    return html`<section class="region" aria-labelledby="region-${r.region}"><h2 id="region-${r.region}">${r.region}</h2>${envs}</section>`;
  });
  return html`<form method="get" action="/console/fleet" role="search" class="search">
<label for="q">Find a tenant by id or name</label> <input id="q" name="q" type="search" value="">  <button type="submit">Search</button>
</form>
<p class="legend">Tiers: <span class="tag tier-free">free</span> <span class="tag tier-standard">standard</span> <span class="tag tier-enterprise">enterprise</span> <span class="tag tier-dedicated">dedicated</span>.
Lifecycle other than active is written beside the tenant (suspended, offboarding, migrating).</p>
<p aria-live="polite">${total} tenant placements on ${view.branch}</p>
${regions}`;
}
