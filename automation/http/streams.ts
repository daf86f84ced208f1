/**
 * Caps on open server-sent-event streams (run and rollout events), per API key and in all
 * (docs/security.md): a stream holds a connection, a database listener and a timer for as long as
 * its client stays, so a leaked key must not be able to open them without end.
 */
import { HttpError } from "./errors.ts";

export class StreamLimits {
  private readonly perKey = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly perKeyMax: number,
    private readonly totalMax: number,
  ) {}

  /** Counts a new stream of `key`, or refuses it (429 over the key's cap, 503 over the total). The result releases it once. */
  open(key: string): () => void {
    const mine = this.perKey.get(key) ?? 0;
    if (mine >= this.perKeyMax) {
      throw new HttpError(429, `API key ${key} already has ${mine} event streams open (TENANCY_SSE_PER_KEY); close one first`);
    }
    if (this.total >= this.totalMax) {
      throw new HttpError(503, `the control plane has ${this.total} event streams open (TENANCY_SSE_TOTAL); retry later`);
    }
    this.perKey.set(key, mine + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perKey.get(key) ?? 1) - 1;
      if (n === 0) this.perKey.delete(key);
      else this.perKey.set(key, n);
    };
  }

  get openStreams(): number {
    return this.total;
  }
}
