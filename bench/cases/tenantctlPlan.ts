/**
 * Bench case: `tenantctl plan ARGS...` as the CLI runs it (cli/main.ts), in the project `dir`
 * (a synthetic fleet in a git repository): wall time of the command and its exit code.
 */
import { performance } from "node:perf_hooks";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import { reply } from "../lib/child.ts";

const [dir, ...args] = process.argv.slice(2) as [string, ...string[]];
process.chdir(dir);
const io = bufferIo();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const code = await main(["plan", ...args], io);
const totalMs = performance.now() - t0;
// CPU time of this process (user + system) over the command: less at the mercy of a shared
// machine's load than the wall time (renderer worker processes are not included).
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
if (code !== 0 && code !== 1) {
  process.stderr.write(`tenantctl plan ${args.join(" ")} exited ${code}:\n${io.stderr.slice(0, 20).join("\n")}\n`);
}
// The exit code and what decided it: 1 is a mandatory violation (quota policies on a synthetic fleet), not a failure to plan.
const mandatory = io.stdout.filter((l) => l.startsWith("mandatory "));
reply({ totalMs, cpuMs, code, stdoutLines: io.stdout.length, mandatory: mandatory.length, firstMandatory: mandatory.slice(0, 3), stderr: io.stderr.slice(0, 5) });
