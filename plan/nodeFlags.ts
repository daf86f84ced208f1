/**
 * The V8 flags a process that renders a plan in its own thread runs with: the tenantctl binary
 * (its shebang, bin/tenantctl.mjs), the base revision's plan (cli/affected/planBase.ts) and the
 * bench cases that stand for it (bench/lib/child.ts). test/cli/nodeFlags.test.ts keeps the
 * shebang and the npm scripts that run the binary with `node` equal to this list.
 *
 * `--max-semi-space-size=16` (MiB): V8 sizes the young generation from the heap limit, which Node
 * derives from the machine's memory; with 24 GiB it lets the new space grow to 128 MiB, and a plan's
 * short-lived garbage then stays resident. Rendering and checking a cell of 100 tenants (2,048
 * resources) peaked at 465 to 495 MiB by default and at 386 to 398 MiB capped at 16 MiB, in about
 * the same time (1.85 to 1.97 s against 1.85 to 1.95); a cell of 1,000 tenants took 13.9 to 15.5 s
 * against 13.2 to 13.7 (BENCHMARKS.md, section 1). A cap of 8 MiB was faster at 100 tenants and
 * 25 % slower at 1,000; 16 costs least where cells are sized (100 tenants).
 *
 * The renderer workers of a plan of many stacks (planStacks.ts) keep V8's default: each renders
 * stack after stack holding the fleet, and capped, `plan --all` of 10,000 tenants took 104 s and
 * 199 s of CPU against 82 s and 157 s (peak 2.4 against 2.8 GiB; BENCHMARKS.md, section 13).
 */
export const PLAN_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=16"];
