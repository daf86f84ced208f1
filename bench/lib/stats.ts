/** Summary statistics over repeated runs: the median and the spread (min, max, relative IQR). */
export interface Summary {
  runs: number;
  median: number;
  min: number;
  max: number;
  /** (p75 - p25) / median: how much the middle half of the runs disagree. */
  relativeIqr: number;
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("summarize: no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  return {
    runs: samples.length,
    median,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    relativeIqr: median === 0 ? 0 : (quantile(sorted, 0.75) - quantile(sorted, 0.25)) / median,
  };
}

export function percentile(samples: readonly number[], p: number): number {
  return quantile([...samples].sort((a, b) => a - b), p / 100);
}
