/**
 * Metrics that tell the truth: a deferred job (the grace-period re-check of a past_due
 * subscription) is counted in tenancy_queue_deferred, not as waiting work in tenancy_queue_depth;
 * a correctly signed body that is not JSON is a payload rejection, not a signature one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUES } from "../../automation/queue.ts";
import { startHarness, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { sign } from "./support/stripe.ts";

let pgs: TestPostgres;
let h: Harness;
beforeAll(async () => {
  pgs = await startTestPostgres();
  h = await startHarness({ pg: pgs, start: { http: true, reconciler: false, runs: false } });
});
afterAll(async () => {
  await h?.close();
  await pgs?.stop();
});

const scrape = async () => (await fetch(`${h.metricsUrl}/metrics`)).text();
const value = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe("metrics", () => {
  it("a deferred reconcile job is not queue depth; a job due now is", async () => {
    await h.cp.boss.send(QUEUES.reconcile, { subscriptionId: "sub_later", eventId: "evt_later" }, { startAfter: new Date(Date.now() + 7 * 24 * 3600 * 1000) });
    let m = await scrape();
    expect(value(m, 'tenancy_queue_depth{queue="billing-reconcile"}')).toBe(0);
    expect(value(m, 'tenancy_queue_deferred{queue="billing-reconcile"}')).toBe(1);
    await h.cp.boss.send(QUEUES.reconcile, { subscriptionId: "sub_now", eventId: "evt_now" });
    m = await scrape();
    expect(value(m, 'tenancy_queue_depth{queue="billing-reconcile"}')).toBe(1);
    expect(value(m, 'tenancy_queue_deferred{queue="billing-reconcile"}')).toBe(1);
    expect(value(m, 'tenancy_queue_depth{queue="stack-run"}')).toBe(0);
  });

  it("a signed body that is not JSON is counted at stage payload; a bad signature at stage signature", async () => {
    const body = "this is not json";
    const res = await h.post(undefined, { body, signature: sign(body) });
    expect(res.status).toBe(400);
    expect((res.json.error as { message: string }).message).toMatch(/^the body is signed correctly but is not JSON \(.+\); expected the Stripe event JSON$/);
    let m = await scrape();
    expect(value(m, 'tenancy_billing_events_rejected_total{stage="payload"}')).toBe(1);
    expect(value(m, 'tenancy_billing_events_rejected_total{stage="signature"}')).toBeUndefined();
    // Negative control: the same body with a wrong signature is a signature rejection.
    const forged = await h.post(undefined, { body, signature: "t=1,v1=00" });
    expect(forged.status).toBe(400);
    m = await scrape();
    expect(value(m, 'tenancy_billing_events_rejected_total{stage="signature"}')).toBe(1);
    expect(value(m, 'tenancy_billing_events_rejected_total{stage="payload"}')).toBe(1);
  });
});
