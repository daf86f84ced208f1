import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { requireFleet } from "../../../infra/model/fleet.ts";
import {
  DocumentError, editTenantText, EditRefusedError, lifecycleEdit, offboardEdits, offboardRequestEdit, planNewTenant, tierChangeEdits,
} from "../../../infra/model/fleetFiles/index.ts";

const REPO = resolve(import.meta.dirname, "../../..");
const fleet = requireFleet({ projectDir: REPO });
const text = (id: string) => readFileSync(join(REPO, "tenants", `${id}.yaml`), "utf8");
const tenant = (id: string) => fleet.tenants.get(id)!.tenant;

describe("tenant edits (one definition for tenantctl, the HTTP API, billing and the workflows)", () => {
  it("offboardEdits: lifecycle and the request, graceDays only when given; comments and layout kept", () => {
    const t = "# kept\nid: x\nlifecycle: active # why\n";
    expect(editTenantText(t, offboardEdits("2026-01-02T03:04:05Z"))).toBe(
      "# kept\nid: x\nlifecycle: offboarding # why\noffboarding:\n  requestedAt: 2026-01-02T03:04:05Z\n",
    );
    expect(editTenantText(t, offboardEdits("2026-01-02T03:04:05Z", 0))).toBe(
      "# kept\nid: x\nlifecycle: offboarding # why\noffboarding:\n  requestedAt: 2026-01-02T03:04:05Z\n  graceDays: 0\n",
    );
  });

  it("offboardRequestEdit keeps the first request time and grace of a tenant already offboarding", () => {
    const first = offboardRequestEdit(text("freebie-one"), tenant("freebie-one"), new Date("2026-01-02T03:04:05.678Z"), 30);
    expect(first.requestedAt).toBe("2026-01-02T03:04:05Z");
    expect(first.files!["tenants/freebie-one.yaml"]).toContain("lifecycle: offboarding\noffboarding:\n  requestedAt: 2026-01-02T03:04:05Z\n  graceDays: 30\n");
    const offboarding = { ...tenant("freebie-one"), lifecycle: "offboarding" as const, offboarding: { requestedAt: "2025-12-01T00:00:00Z", graceDays: 7 } };
    expect(offboardRequestEdit(first.files!["tenants/freebie-one.yaml"]!, offboarding, new Date("2026-02-01T00:00:00Z"), 30)).toEqual({
      files: undefined, requestedAt: "2025-12-01T00:00:00Z", graceDays: 7,
    });
  });

  it("tierChangeEdits: an enterprise tier keeps a dedicated tenant dedicated explicitly; a pooled one only changes tier", () => {
    expect(tierChangeEdits(tenant("acme"), "enterprise")).toEqual([[["tier"], "enterprise"], [["deployment"], "dedicated"]]);
    expect(tierChangeEdits(tenant("freebie-one"), "standard")).toEqual([[["tier"], "standard"]]);
  });

  it("lifecycleEdit: no file when the file already says so; resumption ends an offboarding; suspension of an offboarding tenant is refused", () => {
    expect(lifecycleEdit(text("freebie-one"), tenant("freebie-one"), "active")).toBeUndefined();
    expect(lifecycleEdit(text("freebie-one"), tenant("freebie-one"), "suspended")).toEqual({
      "tenants/freebie-one.yaml": `${text("freebie-one")}lifecycle: suspended\n`,
    });
    const offboarding = { ...tenant("freebie-one"), lifecycle: "offboarding" as const, offboarding: { requestedAt: "2025-12-01T00:00:00Z" } };
    const off = `${text("freebie-one")}lifecycle: offboarding\noffboarding:\n  requestedAt: 2025-12-01T00:00:00Z\n`;
    expect(lifecycleEdit(off, offboarding, "active")).toEqual({ "tenants/freebie-one.yaml": `${text("freebie-one")}lifecycle: active\n` });
    expect(() => lifecycleEdit(off, offboarding, "suspended")).toThrow(EditRefusedError);
  });

  it("planNewTenant: the tenant file after its stack files, with the modeline; a full supernet is a DocumentError at dedicated", () => {
    const planned = planNewTenant(fleet, { id: "bigco", displayName: "bigco", tier: "dedicated", region: "us-east-1", environments: { prod: {} } });
    expect(Object.keys(planned.files)).toEqual(["stacks/Pulumi.dedicated-bigco-prod.yaml", "tenants/bigco.yaml"]);
    expect(planned.files["tenants/bigco.yaml"]!.split("\n")[0]).toBe("# yaml-language-server: $schema=./tenant.schema.json");
    expect(planned.where).toBe("dedicated (dedicated-bigco-prod)");
    const full = { ...fleet, platform: { ...fleet.platform, dedicatedSupernet: "10.64.0.0/14" } };
    const err = (() => {
      try {
        planNewTenant(full, { id: "bigco", tier: "dedicated", region: "us-east-1", environments: { prod: {} } });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(DocumentError);
    expect((err as DocumentError).path).toBe("dedicated");
  });
});
