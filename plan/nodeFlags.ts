/**
 * The V8 flags every process that renders plans runs with: the tenantctl binary (its shebang,
 * bin/tenantctl.mjs), the renderer workers it forks (planStacks.ts) and the bench cases that stand
 * for it (bench/cases/planCell.ts through bench/lib/child.ts). test/cli/nodeFlags.test.ts keeps
 * the shebang and the npm scripts that run the binary with `node` equal to this list.
 *
 * `--max-semi-space-size=16` (MiB): V8 sizes the young generation from the heap limit, which Node
 * derives from the machine's memory; with 24 GiB it lets the new space grow to 128 MiB, and a plan's
 * short-lived garbage then stays resident. Rendering and checking a cell of 100 tenants (2,048
 * resources) peaked at 465 to 495 MiB by default and at 386 to 398 MiB capped at 16 MiB, in about
 * the same time (1.85 to 1.97 s against 1.85 to 1.95); a cell of 1,000 tenants took 13.9 to 15.5 s
 * against 13.2 to 13.7 (BENCHMARKS.md, section 1). A cap of 8 MiB was faster at 100 tenants and
 * 25 % slower at 1,000; 16 costs least where cells are sized (100 tenants).
 */
export const PLAN_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=16"];
