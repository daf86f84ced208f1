/**
 * The lag of the change captures this process is running, for the metrics endpoint
 * (`tenancy_cdc_slot_lag_bytes`, automation/metrics.ts): WAL bytes the cell has written past the
 * position applied to the dedicated copy, as last measured by the capture. An entry is removed
 * when its slot is dropped; a gauge that keeps growing means a capture has stopped consuming and
 * its slot is holding the cell's WAL (docs/lifecycle.md, "Change capture and the write window").
 */
export interface LagLabels {
  tenant: string;
  env: string;
  slot: string;
}

const lags = new Map<string, { labels: LagLabels; bytes: number; at: Date }>();

export function recordLag(labels: LagLabels, bytes: number, at: Date = new Date()): void {
  lags.set(labels.slot, { labels, bytes, at });
}

export function forgetLag(labels: Pick<LagLabels, "slot">): void {
  lags.delete(labels.slot);
}

export function currentLags(): { labels: LagLabels; bytes: number; at: Date }[] {
  return [...lags.values()].map((l) => ({ ...l, labels: { ...l.labels } }));
}
