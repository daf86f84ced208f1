/**
 * The API keys in force, reloaded from TENANCY_API_KEYS on SIGHUP and when the file changes
 * (docs/security.md). A file that no longer loads leaves the previous keys in force and says why
 * in the log; a good one replaces them for every request that starts afterwards.
 */
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "../log.ts";
import { ApiKeyIndex, loadApiKeys, type ApiKeyRecord } from "./apiKeys.ts";

/** Editors write a file in several steps: reload once they are done. */
const RELOAD_DEBOUNCE_MS = 150;

export class ApiKeyRing {
  private index: ApiKeyIndex;
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private readonly onSighup = () => this.reload("SIGHUP");
  /** Reloads done (successful or not); tests wait on it. */
  reloads = 0;

  constructor(
    records: readonly ApiKeyRecord[],
    private readonly opts: { file?: string; log: Logger },
  ) {
    this.index = new ApiKeyIndex(records);
  }

  get current(): ApiKeyIndex {
    return this.index;
  }

  /** Reads the file again; true when the new keys are in force. */
  reload(reason: string): boolean {
    const file = this.opts.file;
    if (!file) return false;
    try {
      const records = loadApiKeys(file);
      this.index = new ApiKeyIndex(records);
      this.opts.log.info({ reason, file, keys: records.map((r) => r.name) }, "API keys reloaded");
      return true;
    } catch (err) {
      this.opts.log.error({ reason, file, err: { message: (err as Error).message } }, "API key file not reloaded; the previous keys stay in force");
      return false;
    } finally {
      this.reloads++;
    }
  }

  /** Reload on SIGHUP and on changes to the file (its directory is watched: editors replace files by renaming). */
  watch(): void {
    process.on("SIGHUP", this.onSighup);
    const file = this.opts.file;
    if (!file || this.watcher) return;
    const name = basename(file);
    try {
      this.watcher = watch(dirname(file), (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.reload("file changed"), RELOAD_DEBOUNCE_MS);
      });
      this.watcher.on("error", (err) => this.opts.log.warn({ file, err: { message: err.message } }, "watching the API key file failed; reload it with SIGHUP"));
    } catch (err) {
      this.opts.log.warn({ file, err: { message: (err as Error).message } }, "cannot watch the API key file; reload it with SIGHUP");
    }
  }

  close(): void {
    process.off("SIGHUP", this.onSighup);
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
