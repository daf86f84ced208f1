import { resolve } from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { platformReference, readPlatformOutput } from "../../infra/components/platformReference.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { PLATFORM_OUTPUTS } from "../../infra/model/hub.ts";
import { platformReferenceOutputs } from "../../plan/render/platformReference.ts";
import { renderStack } from "../../plan/render/render.ts";

const fleet = requireFleet({ projectDir: resolve(import.meta.dirname, "../..") });

/**
 * The value or the error of an Output, through the SDK's own promises of it (internal). A failed
 * Output rejects its isKnown and isSecret promises too: they are caught here, as the engine would.
 */
function settle(o: pulumi.Output<string>): Promise<{ value?: string; error?: string }> {
  const inner = o as unknown as { promise(): Promise<string>; isKnown: Promise<boolean>; isSecret: Promise<boolean> };
  inner.isKnown.catch(() => undefined);
  inner.isSecret.catch(() => undefined);
  return inner.promise().then((value) => ({ value }), (err: unknown) => ({ error: (err as Error).message }));
}

describe("readPlatformOutput", () => {
  it("reads a platform output, and fails a missing one naming the referenced stack (not an Output's toString)", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const seen: { value?: string; error?: string }[] = [];
    try {
      await renderStack(fleet, "dedicated-acme-prod", {
        program: async () => {
          const ref = platformReference("eu-west-1");
          seen.push(await settle(readPlatformOutput(ref, PLATFORM_OUTPUTS.transitGatewayId)));
          seen.push(await settle(readPlatformOutput(ref, "noSuchOutput")));
          return {};
        },
      });
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    const expected = (platformReferenceOutputs(fleet, "organization/saas-tenancy/platform-eu-west-1")?.stack as Record<string, unknown>)[PLATFORM_OUTPUTS.transitGatewayId];
    expect(typeof expected).toBe("string");
    expect(seen).toEqual([
      { value: expected },
      { error: "stack organization/saas-tenancy/platform-eu-west-1: output stack.noSuchOutput is missing; deploy the platform stack of this region first (docs/deploying.md)" },
    ]);
    expect(unhandled).toEqual([]);
  });
});
