/**
 * Peak resident memory of a process and all its descendants together (Linux /proc), sampled from
 * outside: `tenantctl plan --all` renders in one worker process per core, so the plan's memory is
 * the sum over the tree, which neither the parent's maxRSS nor RUSAGE_CHILDREN (the largest child
 * only) gives.
 */
import { readdirSync, readFileSync } from "node:fs";

const PAGE_KB = 4;

/** RSS (KiB) of `root` and its descendants now; 0 when it is gone. */
export function treeRssKb(root: number): number {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(entry), Number(fields[1]));
      rss.set(Number(entry), Number(readFileSync(`/proc/${entry}/statm`, "utf8").split(" ")[1]) * PAGE_KB);
    } catch {
      // the process ended while being read
    }
  }
  let total = 0;
  for (const [pid, kb] of rss) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        total += kb;
        break;
      }
    }
  }
  return total;
}

/** Samples treeRssKb(root) every `everyMs` until stop(); stop() returns the peak in MiB. */
export function sampleTreeRss(root: number, everyMs = 200): { stop(): number } {
  let peak = treeRssKb(root);
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRssKb(root));
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak / 1024;
    },
  };
}
