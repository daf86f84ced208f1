/**
 * `tenantctl workflows`' listing (cli/commands/workflows.ts, formatWorkflows): when an open workflow
 * wakes and why, and a cancel recorded while a step runs; nothing of either for an ended one.
 */
import { describe, expect, it } from "vitest";
import type { WorkflowSummary } from "../../automation/index.ts";
import { formatWorkflows } from "../../cli/commands/workflows.ts";

const row = (over: Partial<WorkflowSummary>): WorkflowSummary => ({
  id: "0b9f6c7e-2f4a-4c1e-9a57-3d1e8b2c4f10", kind: "move", tenantId: "acme", state: "waiting", currentStep: "cutover.window", lastError: null,
  wakeAt: new Date("2026-04-01T21:45:00Z"), note: "cutover not before 2026-04-01T22:00:00.000Z", cancelRequestedAt: null, updatedAt: new Date("2026-04-01T21:30:00Z"),
  ...over,
});
const cells = (out: string) => out.split("\n").slice(1).map((l) => l.split(/ {2,}/).slice(3, 6));

describe("tenantctl workflows", () => {
  it("shows when a waiting workflow wakes and why, a retry's time, and a pending cancel", () => {
    const out = formatWorkflows([
      row({}),
      row({ state: "running", currentStep: "copy.data", wakeAt: new Date("2026-04-01T21:40:00Z"), note: null, lastError: "the cell is unreachable" }),
      row({ state: "running", currentStep: "copy.data", wakeAt: null, note: null, cancelRequestedAt: new Date("2026-04-01T21:31:00Z") }),
      row({ state: "cancelled", wakeAt: null, note: "cancelled by api key ops", cancelRequestedAt: new Date("2026-04-01T21:31:00Z") }),
    ], false);
    expect(out.split("\n")[0]).toMatch(/^ID +KIND +TENANT +STATE +STEP +WAKES +UPDATED +LAST ERROR$/);
    expect(cells(out)).toEqual([
      ["waiting", "cutover.window", "2026-04-01T21:45:00.000Z (cutover not before 2026-04-01T22:00:00.000Z)"],
      ["running", "copy.data", "2026-04-01T21:40:00.000Z"],
      ["running (cancelling)", "copy.data", "-"],
      ["cancelled", "cutover.window", "-"],
    ]);
    expect(JSON.parse(formatWorkflows([row({ cancelRequestedAt: new Date("2026-04-01T21:31:00Z") })], true))).toEqual([{
      id: "0b9f6c7e-2f4a-4c1e-9a57-3d1e8b2c4f10", kind: "move", tenant: "acme", state: "waiting", step: "cutover.window", lastError: null,
      wakeAt: "2026-04-01T21:45:00.000Z", note: "cutover not before 2026-04-01T22:00:00.000Z", cancelRequestedAt: "2026-04-01T21:31:00.000Z", updatedAt: "2026-04-01T21:30:00.000Z",
    }]);
    expect(formatWorkflows([], false)).toBe("no workflows match");
  });
});
