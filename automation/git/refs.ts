/**
 * A branch's head read from the repository's ref files instead of a `git rev-parse` process.
 *
 * Every run reads the main branch's head (GitWriter.checkout). Spawning git for it forks the whole
 * control-plane process: on a loaded host that blocked the event loop for tens of milliseconds per
 * run, the largest single cost of a rollout wave's claims (docs/rollouts.md, "Pace"). Git stores a
 * branch as a loose file `<common dir>/refs/heads/<branch>` holding the commit id, or as a line of
 * `<common dir>/packed-refs` once packed; a loose file wins over a packed line
 * (https://git-scm.com/docs/gitrepository-layout, "refs" and "packed-refs"). Git replaces both
 * files by renaming a completed lock file over them, so a read never sees half a write.
 *
 * The files are read with synchronous calls: a ref file is 41 bytes, read in microseconds from the
 * page cache, where fs.promises.readFile is four hops through libuv's thread pool (open, stat,
 * read, close), queued behind whatever else the pool holds: a wave's 32 overlay removals put 3 to
 * 9 ms between a job in hand and its claim in the run-overhead bench (docs/control-plane.md,
 * "Per-run overhead"); read synchronously, 0.2 ms.
 *
 * Whatever this cannot read plainly (a symbolic ref, a repository with the reftable ref format, an
 * unreadable file, a branch not found in either place) is answered `undefined`, and the caller asks
 * git itself: this is a shortcut, never a second source of truth.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";

/** What the reader needs of git: run a command in the repository (GitRepo.run). */
export interface RefGit {
  readonly dir: string;
  run(args: readonly string[], opts?: { okCodes?: readonly number[] }): Promise<{ stdout: string; code: number }>;
}

const OBJECT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export class RefFiles {
  /** The common git directory holding refs/ and packed-refs; undefined: refs are not files (reftable). */
  private layout?: Promise<string | undefined>;

  constructor(private readonly git: RefGit) {}

  /** Where the ref files are, asked of git once. */
  private commonDir(): Promise<string | undefined> {
    if (this.layout) return this.layout;
    const asked = (async () => {
      const format = await this.git.run(["config", "--get", "extensions.refStorage"], { okCodes: [1] });
      if (format.code === 0 && format.stdout.trim() !== "" && format.stdout.trim() !== "files") return undefined;
      const dir = (await this.git.run(["rev-parse", "--git-common-dir"])).stdout.trim();
      return isAbsolute(dir) ? dir : join(this.git.dir, dir);
    })();
    // A failure is not remembered: the next read asks again (and meanwhile the caller asks git).
    asked.catch(() => {
      if (this.layout === asked) this.layout = undefined;
    });
    this.layout = asked;
    return asked;
  }

  /** Reads in flight, by ref: callers meanwhile share one (a wave's 32 claims read the head at once). */
  private readonly inFlight = new Map<string, Promise<string | undefined>>();
  /** Reads of the ref files done (tests count them). */
  reads = 0;

  /**
   * The object id `ref` (a full name, `refs/heads/main`) points to, or undefined: ask git. A call
   * while a read of `ref` is in flight gets that read's answer: the ref as it was a moment before
   * the call, which is what reading it an instant earlier would have given (a run sees the branch
   * before or after a commit, never between; GitWriter.checkout).
   */
  read(ref: string): Promise<string | undefined> {
    let r = this.inFlight.get(ref);
    if (!r) {
      r = this.readFiles(ref).finally(() => this.inFlight.delete(ref));
      this.inFlight.set(ref, r);
    }
    return r;
  }

  private async readFiles(ref: string): Promise<string | undefined> {
    this.reads++;
    const dir = await this.commonDir().catch(() => undefined);
    if (!dir) return undefined;
    const loose = readSmall(join(dir, ref));
    if (loose !== undefined) {
      const id = loose.trim();
      return OBJECT_ID.test(id) ? id : undefined;
    }
    const packed = readSmall(join(dir, "packed-refs"));
    if (packed === undefined) return undefined;
    for (const line of packed.split("\n")) {
      if (line.startsWith("#") || line.startsWith("^")) continue;
      const space = line.indexOf(" ");
      if (space > 0 && line.slice(space + 1).trimEnd() === ref) {
        const id = line.slice(0, space);
        return OBJECT_ID.test(id) ? id : undefined;
      }
    }
    return undefined;
  }
}

/** A small file's text, or undefined when it cannot be read (absent, unreadable: the caller asks git). */
function readSmall(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
