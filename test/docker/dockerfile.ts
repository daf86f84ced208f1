/**
 * A Dockerfile read as its instructions, grouped by stage: what the static check
 * (dockerfile.test.ts) and the production-layout test (productionLayout.test.ts) both read.
 */

export interface Instruction {
  op: string;
  args: string;
  line: number;
}
export interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

/** Dockerfile instructions (continuation lines joined, comments dropped), grouped by stage. */
export function parseDockerfile(text: string): { globalArgs: Map<string, string | undefined>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let buf = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (buf === "" && (line === "" || line.startsWith("#"))) return;
    if (buf !== "" && line.startsWith("#")) return;
    if (buf === "") start = i + 1;
    buf += (buf ? " " : "") + line.replace(/\\$/, "").trim();
    if (!line.endsWith("\\")) {
      const m = /^(\S+)\s*(.*)$/.exec(buf)!;
      instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
      buf = "";
    }
  });
  const globalArgs = new Map<string, string | undefined>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      stages.push({ name: m[2] ?? String(stages.length), from: m[1]!, body: [] });
    } else if (stages.length === 0) {
      if (ins.op === "ARG") {
        const [k, v] = ins.args.split("=");
        globalArgs.set(k!, v);
      }
    } else {
      stages.at(-1)!.body.push(ins);
    }
  }
  return { globalArgs, stages };
}
