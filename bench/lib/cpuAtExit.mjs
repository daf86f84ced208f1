// Preloaded by the cli-startup and fleet-scale benches (`node --import <this file> ...`): at exit the
// process writes its own CPU time (process.cpuUsage(), user + system, microseconds) to
// BENCH_CPU_FILE, and under `children` that of its children it has waited for (renderer workers,
// git), from /proc/self/stat (cutime, cstime; Linux, in USER_HZ ticks of 1/100 s). CPU time is what
// a command costs regardless of how busy the machine is; wall time is measured beside it.
import { readFileSync, writeFileSync } from "node:fs";

const USER_HZ = 100;

function childrenCpu() {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // pid (comm) state ppid ...: fields after the comm's closing parenthesis, field 3 first.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const tick = 1e6 / USER_HZ;
    return { user: Number(fields[13]) * tick, system: Number(fields[14]) * tick };
  } catch {
    return undefined;
  }
}

const file = process.env.BENCH_CPU_FILE;
if (file) process.on("exit", () => writeFileSync(file, JSON.stringify({ ...process.cpuUsage(), children: childrenCpu() })));
