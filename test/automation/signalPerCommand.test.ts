/**
 * The run's AbortSignal reaches each Pulumi CLI command through a signal of its own
 * (automation/runs/support.ts, signalPerCommand): the Automation API adds an abort listener per
 * command and never removes it, which on the run's signal piled up to Node's
 * MaxListenersExceededWarning ("11 abort listeners added to [AbortSignal]").
 */
import { getEventListeners } from "node:events";
import type { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { describe, expect, it } from "vitest";
import { signalPerCommand } from "../../automation/runs/support.ts";

type Run = (args: string[], cwd: string, env: Record<string, string>, o?: unknown, e?: unknown, signal?: AbortSignal) => Promise<string>;

/** Behaves like @pulumi/pulumi automation/cmd.js exec: a listener per command, never removed. */
function leakyCli(pending: { release?: () => void }): PulumiCommand {
  const run: Run = (args, _cwd, _env, _o, _e, signal) =>
    new Promise((resolve, reject) => {
      signal?.addEventListener("abort", () => reject(new Error(`${args[0]} interrupted`)));
      if (args[0] === "wait") pending.release = () => resolve("done");
      else resolve(args[0]!);
    });
  return { command: "pulumi", version: null, run } as unknown as PulumiCommand;
}

const runOf = (cmd: PulumiCommand) => (cmd as unknown as { run: Run }).run;

describe("signalPerCommand", () => {
  it("leaves no listener on the run's signal after each command, and an abort still reaches a running command", async () => {
    const run = new AbortController();
    const cli = signalPerCommand(leakyCli({}));
    for (let i = 0; i < 20; i++) expect(await runOf(cli)([`cmd${i}`], "/", {}, undefined, undefined, run.signal)).toBe(`cmd${i}`);
    expect(getEventListeners(run.signal, "abort")).toHaveLength(0);
    expect(cli.command).toBe("pulumi");

    const pending: { release?: () => void } = {};
    const waiting = runOf(signalPerCommand(leakyCli(pending)))(["wait"], "/", {}, undefined, undefined, run.signal);
    expect(getEventListeners(run.signal, "abort")).toHaveLength(1);
    run.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("wait interrupted");
  });

  it("negative control: the CLI alone leaves one listener per command on the signal", async () => {
    const run = new AbortController();
    const cli = leakyCli({});
    for (let i = 0; i < 20; i++) await runOf(cli)([`cmd${i}`], "/", {}, undefined, undefined, run.signal);
    expect(getEventListeners(run.signal, "abort")).toHaveLength(20);
  });
});
