import { execFileSync } from "node:child_process";
import { availableParallelism, cpus, totalmem, release, platform, arch } from "node:os";

export interface MachineFacts {
  node: string;
  platform: string;
  arch: string;
  kernel: string;
  cpuModel: string;
  cores: number;
  memoryGb: number;
  gitCommit: string;
  date: string;
}

export function machineFacts(): MachineFacts {
  let gitCommit = "unknown";
  try {
    gitCommit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    // Not a git checkout: keep "unknown".
  }
  return {
    node: process.version,
    platform: platform(),
    arch: arch(),
    kernel: release(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    gitCommit,
    date: new Date().toISOString(),
  };
}
