const root = process.argv[2]!;
const n = Number(process.argv[3] ?? 100);
const runs = Number(process.argv[4] ?? 5);
const { writeSyntheticFleet } = await import(`${root}/bench/lib/fleetGen.ts`);
const { runCase } = await import(`${root}/bench/lib/child.ts`);
const fleet = writeSyntheticFleet({ pooled: n, cells: 1, dedicated: 0 });
const out: string[] = [];
for (let i = 0; i < runs; i++) {
  const r = await runCase("planCell.ts", [fleet.dir, fleet.cells[0]!, "fast"]);
  out.push(`${Math.round(r.peakRssMb)}MiB/${Math.round(r.result.totalMs)}ms`);
}
console.log(root, n, out.join(" "));
