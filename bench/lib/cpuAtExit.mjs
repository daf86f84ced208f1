// Preloaded by the cli-startup bench (`node --import <this file> ...`): at exit the process writes
// its own CPU time (process.cpuUsage(), user + system, microseconds) to BENCH_CPU_FILE. CPU time is
// what a start costs regardless of how busy the machine is; wall time is measured beside it.
import { writeFileSync } from "node:fs";

const file = process.env.BENCH_CPU_FILE;
if (file) process.on("exit", () => writeFileSync(file, JSON.stringify(process.cpuUsage())));
