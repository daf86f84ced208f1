/** Fills the example fleet's staging cell (use1-01: capacity 20, 2 residents) for the cells tests. */
import type { FleetCopy } from "./fleetCopy.ts";

/** Writes filler-00 .. filler-(n-1), free tenants placed in staging use1-01 (idempotent per id). */
export function addStagingTenants(fleet: FleetCopy, n: number, prefix = "filler"): void {
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${String(i).padStart(2, "0")}`;
    fleet.write(`tenants/${id}.yaml`, `id: ${id}\ndisplayName: ${id}\ntier: free\nregion: us-east-1\nenvironments:\n  staging: {}\nplacement:\n  staging: use1-01\n`);
  }
}
