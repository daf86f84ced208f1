import { Argument, Command, CommanderError, Option } from "commander";
import { FleetError, formatProblem } from "../infra/model/problems.ts";
import { newCommand } from "./commands/new.ts";
import { PlanError } from "../plan/planError.ts";
import { deferTypescript } from "../plan/render/deferTypescript.ts";
import { cellsCommand } from "./commands/cells.ts";
import { routesCommand } from "./commands/routes.ts";
import { schemaCommand } from "./commands/schema.ts";
import { validateCommand } from "./commands/validate.ts";
import { EXIT, ProblemsError, UsageError, processIo, type Io } from "./io.ts";

const collect = (value: string, prior: string[] = []) => [...prior, value];

// Commands that load Pulumi, the policy pack or git tooling are imported when they run, so
// `validate`, `new` and `routes` start fast.
// Before one is imported, the SDK's TypeScript compiler is deferred (plan/render/deferTypescript.ts):
// it must precede the SDK's first load, and the commands that never load the SDK skip it.
const sdkCommand = <T>(load: () => Promise<T>): Promise<T> => (deferTypescript(), load());
const planCommand: typeof import("./commands/plan.ts").planCommand = async (...a) => (await sdkCommand(() => import("./commands/plan.ts"))).planCommand(...a);
const policyCheckCommand: typeof import("./commands/policyCheck.ts").policyCheckCommand = async (...a) =>
  (await sdkCommand(() => import("./commands/policyCheck.ts"))).policyCheckCommand(...a);
const affectedCommand: typeof import("./commands/affected.ts").affectedCommand = async (...a) => (await sdkCommand(() => import("./commands/affected.ts"))).affectedCommand(...a);
const rolloutCommand: typeof import("./commands/rollout.ts").rolloutCommand = async (...a) => (await sdkCommand(() => import("./commands/rollout.ts"))).rolloutCommand(...a);
const driftCommand: typeof import("./commands/drift.ts").driftCommand = async (...a) => (await sdkCommand(() => import("./commands/drift.ts"))).driftCommand(...a);
const dbCommand: typeof import("./commands/db.ts").dbCommand = async (...a) => (await sdkCommand(() => import("./commands/db.ts"))).dbCommand(...a);
const costCommand: typeof import("./commands/cost.ts").costCommand = async (...a) => (await sdkCommand(() => import("./commands/cost.ts"))).costCommand(...a);

function withDirs(cmd: Command): Command {
  return cmd
    .option("--tenants <dir>", "tenant files directory (default: <project>/tenants)")
    .option("--stacks <dir>", "stack config directory (default: <project>/stacks)")
    .option("--project <dir>", "directory holding Pulumi.yaml (default: nearest from the current directory)");
}

/** Builds the program. Each action stores its exit code; errors are mapped in main(). */
export function buildProgram(io: Io, setCode: (code: number) => void): Command {
  const program = new Command("tenantctl")
    .description("Tenant fleet tooling for the saas-tenancy Pulumi project")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showSuggestionAfterError();

  withDirs(program.command("validate").description("validate every tenant and stack file"))
    .option("--base <ref>", "also compare with the fleet at this git revision: refuse a pooled tenant's placement change (a move)")
    .action(async (opts: Parameters<typeof validateCommand>[0]) => setCode(await validateCommand(opts, io)),
  );

  withDirs(
    program
      .command("new")
      .description("create a tenant file (and a dedicated tenant's stack files) with placement or CIDRs chosen")
      .argument("<id>", "tenant id (a DNS label)")
      .addOption(new Option("--tier <tier>", "tier").choices(["free", "standard", "enterprise", "dedicated"]).makeOptionMandatory())
      .option("--region <region>", "AWS region (default: the platform's first region)")
      .option("--env <env>", "environment, repeatable (default: prod)", collect)
      .option("--name <displayName>", "display name (default: the id)")
      .addOption(new Option("--deployment <deployment>", "enterprise only: pooled or dedicated").choices(["pooled", "dedicated"]))
      .option("--dry-run", "print the files instead of writing them"),
  ).action((id: string, opts: Parameters<typeof newCommand>[1]) => setCode(newCommand(id, opts, io)));

  withDirs(program.command("routes").description("print the routing table: tenant -> URL, deployment, stack"))
    .option("--json", "print JSON")
    .action((opts: Parameters<typeof routesCommand>[0]) => setCode(routesCommand(opts, io)));

  withDirs(program.command("cells").description("every cell's residents, capacity and headroom per env and region (docs/cells.md)"))
    .option("--json", "print JSON")
    .action((opts: Parameters<typeof cellsCommand>[0]) => setCode(cellsCommand(opts, io)));

  withDirs(program.command("schema").description("print the tenant files' JSON schema (generated from the zod schema)"))
    .option("--write", "write it to <tenants>/tenant.schema.json")
    .option("--check", "exit 1 when the committed tenant.schema.json is stale")
    .option("--markdown", "print the tenant file reference of docs/tenant-files.md instead")
    .action((opts: Parameters<typeof schemaCommand>[0]) => setCode(schemaCommand(opts, io)));

  withDirs(
    program
      .command("plan")
      .description("render stacks offline (mock runtime), run the policy pack on them, print a summary")
      .option("--stack <name>", "a stack to plan, repeatable", collect)
      .option("--all", "plan every stack in the stacks directory")
      .option("--json <file>", "write { stacks: [{ name, kind, tenants, resources, violations }] }")
      .option("--parallel <n>", "renderer processes (default: the number of cores)")
      .option("--base <ref>", "also plan the stacks at this git revision and show what changes (default stacks: the affected ones)")
      .option("--markdown <file>", "with --base: write the pull-request comment (summary table, one section per stack)"),
  ).action(async (opts: Parameters<typeof planCommand>[0]) => setCode(await planCommand(opts, io)));

  const policy = program.command("policy").description("the CrossGuard policy pack, offline");
  withDirs(
    policy
      .command("check")
      .description("run the pack over a plan JSON or a `pulumi stack export` file")
      .argument("<file>", "plan JSON or stack export"),
  ).action(async (file: string, opts: Parameters<typeof policyCheckCommand>[1]) => setCode(await policyCheckCommand(file, opts, io)));

  const network = program.command("network").description("the fleet's network reachability analysis, offline (docs/network.md)");
  withDirs(
    network
      .command("check")
      .description("prove runners reach every database and tenants never reach each other, over a plan JSON (plan --all --json) or a stack export")
      .argument("<file>", "plan JSON or stack export of every stack")
      .option("--verbose", "also print every proven runner -> database path, hop by hop"),
  ).action(async (file: string, opts: import("./commands/networkCheck.ts").NetworkCheckOptions) => setCode((await sdkCommand(() => import("./commands/networkCheck.ts"))).networkCheckCommand(file, opts, io)));

  program
    .command("affected")
    .description("print the stacks a change touches (git diff of tenants/, stacks/, infra/, policy/), one a line")
    .requiredOption("--base <ref>", "the revision to compare with, e.g. origin/main")
    .option("--head <ref>", "the revision to compare (default: the working tree, untracked files included)")
    .option("--json", "print { stacks, details: [{ name, reasons, inBase, inHead }] }")
    .option("--project <dir>", "directory holding Pulumi.yaml (default: nearest from the current directory)")
    .action(async (opts: Parameters<typeof affectedCommand>[0]) => setCode(await affectedCommand(opts, io)));

  withDirs(
    program
      .command("cost")
      .description("monthly cost per stack and per tenant from the rendered resources and a dated price table")
      .option("--stack <name>", "a stack to price, repeatable (default: every stack)", collect)
      .option("--all", "price every stack in the stacks directory")
      .option("--json", "print the report as JSON"),
  ).action(async (opts: Parameters<typeof costCommand>[0]) => setCode(await costCommand(opts, io)));

  // Lifecycle (cli/lifecycle/operator.ts): with DATABASE_URL the request becomes a control-plane
  // workflow; without it only the tenant file is edited (upgrade: printed) and no stack is updated.
  // Imported when they run (they load pg and the workflow engine).
  const project = "directory holding Pulumi.yaml (default: nearest from the current directory)";
  const upgradeCommand: typeof import("./commands/upgrade.ts").upgradeCommand = async (...a) => (await sdkCommand(() => import("./commands/upgrade.ts"))).upgradeCommand(...a);
  const suspendCommand: typeof import("./commands/suspend.ts").suspendCommand = async (...a) => (await sdkCommand(() => import("./commands/suspend.ts"))).suspendCommand(...a);
  const resumeCommand: typeof import("./commands/resume.ts").resumeCommand = async (...a) => (await sdkCommand(() => import("./commands/resume.ts"))).resumeCommand(...a);
  const offboardCommand: typeof import("./commands/offboard.ts").offboardCommand = async (...a) => (await sdkCommand(() => import("./commands/offboard.ts"))).offboardCommand(...a);
  const rotateCommand: typeof import("./commands/rotate.ts").rotateCommand = async (...a) => (await sdkCommand(() => import("./commands/rotate.ts"))).rotateCommand(...a);
  const moveCommand: typeof import("./commands/move.ts").moveCommand = async (...a) => (await sdkCommand(() => import("./commands/move.ts"))).moveCommand(...a);
  const retryCommand: typeof import("./commands/retry.ts").retryCommand = async (...a) => (await sdkCommand(() => import("./commands/retry.ts"))).retryCommand(...a);
  const workflowsCommand: typeof import("./commands/workflows.ts").workflowsCommand = async (...a) => (await sdkCommand(() => import("./commands/workflows.ts"))).workflowsCommand(...a);
  const cancelCommand: typeof import("./commands/cancel.ts").cancelCommand = async (...a) => (await sdkCommand(() => import("./commands/cancel.ts"))).cancelCommand(...a);
  program
    .command("upgrade")
    .description("upgrade a pooled tenant to its own dedicated stack (data copy and cutover by the control plane)")
    .argument("<id>", "tenant id")
    .addOption(new Option("--to <deployment>", "target deployment").choices(["dedicated"]))
    .option("--cutover-at <time>", "cut over no earlier than this ISO 8601 time (a maintenance window)")
    .option("--rollback", "roll back the tenant's upgrade (only before cutover)")
    .option("--destroy-dedicated", "with --rollback: destroy the dedicated stack too (default: keep it)")
    .option("--project <dir>", project)
    .action(async (id: string, opts: Parameters<typeof upgradeCommand>[1]) => setCode(await upgradeCommand(id, opts, io)));
  program
    .command("suspend")
    .description("suspend a tenant: database LOGIN revoked, DNS to the suspension page, data kept")
    .argument("<id>", "tenant id")
    .option("--project <dir>", project)
    .action(async (id: string, opts: Parameters<typeof suspendCommand>[1]) => setCode(await suspendCommand(id, opts, io)));
  program
    .command("resume")
    .description("resume a suspended tenant (or cancel an offboarding still in its grace period)")
    .argument("<id>", "tenant id")
    .option("--project <dir>", project)
    .action(async (id: string, opts: Parameters<typeof resumeCommand>[1]) => setCode(await resumeCommand(id, opts, io)));
  program
    .command("offboard")
    .description("offboard a tenant: data deleted after the grace period, once final backups are recorded")
    .argument("<id>", "tenant id")
    .option("--grace-days <n>", "days the data is kept (default 30)")
    .option("--project <dir>", project)
    .action(async (id: string, opts: Parameters<typeof offboardCommand>[1]) => setCode(await offboardCommand(id, opts, io)));
  program
    .command("rotate")
    .description("rotate a tenant's database password without downtime (a control-plane workflow; needs DATABASE_URL)")
    .argument("<id>", "tenant id")
    .option("--env <env...>", "only these environments (default: all of the tenant's)")
    .option("--project <dir>", project)
    .action(async (id: string, opts: Parameters<typeof rotateCommand>[1]) => setCode(await rotateCommand(id, opts, io)));
  program
    .command("move")
    .description("move a pooled tenant to another cell of its env and region: data copied with change capture, seconds of write downtime (a control-plane workflow; needs DATABASE_URL)")
    .argument("<id>", "tenant id")
    .option("--to <cell>", "the cell to move to (e.g. use1-02): open, not draining, with room")
    .option("--env <env>", "the environment that moves (default: the one whose cells include --to)")
    .option("--not-before <time>", "switch no earlier than this ISO 8601 time with its offset (a maintenance window); the copy runs at once")
    .option("--rollback", "roll back the tenant's move under way (only before its switch)")
    .option("--project <dir>", project)
    .action(async (id: string, opts: Parameters<typeof moveCommand>[1]) => setCode(await moveCommand(id, opts, io)));
  // Workflows already recorded in the control plane's database: DATABASE_URL only, no local mode.
  program
    .command("retry")
    .description("put a failed lifecycle workflow back in the control plane's queue at the step it failed in (needs DATABASE_URL)")
    .argument("<workflow-id>", "the workflow's id (a UUID; tenantctl workflows lists them)")
    .action(async (id: string) => setCode(await retryCommand(id, io)));
  program
    .command("cancel")
    .description("cancel an open lifecycle workflow; an upgrade's or a move's open write window is undone first, a running copy is stopped (needs TENANCY_URL and TENANCY_API_KEY)")
    .argument("<workflow-id>", "the workflow's id (a UUID; tenantctl workflows lists them)")
    .option("--note <text>", "why, recorded with the cancel")
    .action(async (id: string, opts: { note?: string }) => setCode(await cancelCommand(id, opts, io)));
  program
    .command("workflows")
    .description("list the most recent lifecycle workflows in the control plane's database, newest first (needs DATABASE_URL)")
    .option("--tenant <id>", "only this tenant's")
    .addOption(new Option("--state <state>", "only workflows in this state").choices(["open", "pending", "running", "waiting", "succeeded", "failed", "cancelled"]))
    .option("--limit <n>", "at most this many (default 50)")
    .option("--json", "print JSON")
    .action(async (opts: Parameters<typeof workflowsCommand>[0]) => setCode(await workflowsCommand(opts, io)));

  program
    .command("db")
    .description("migrate the tenant schemas through the control plane, ring by ring; status and rollback (needs TENANCY_URL and TENANCY_API_KEY)")
    .addArgument(new Argument("<action>", "what to do").choices(["migrate", "status", "rollback", "rollback-wave", "show", "resume", "abort"]))
    .argument("[target]", "rollback: the tenant; show, resume, abort, rollback-wave: the schema migration's id")
    .option("--wave <n>", "rollback-wave: the wave to roll back, 1 is the first (default: the one it halted in)")
    .option("--to <version>", "migrate: the target version (default: templateVersion of Pulumi.yaml); rollback: the version to go back to")
    .option("--tenant <id>", "migrate, status: only this tenant's schemas")
    .option("--dry-run", "migrate, rollback: print what each schema would get; change nothing")
    .option("--follow", "migrate, rollback: wait for the end; exit 0 only when every schema succeeded")
    .option("--json", "status, --dry-run: print JSON")
    .action(async (action: string, target: string | undefined, opts: Parameters<typeof dbCommand>[2]) => setCode(await dbCommand(action, target, opts, io)));

  program
    .command("rollout")
    .description("roll a program, policy or platform change out through the control plane, ring by ring (needs TENANCY_URL and TENANCY_API_KEY)")
    .addArgument(new Argument("<action>", "what to do").choices(["start", "status", "pause", "resume", "abort"]))
    .argument("[id]", "the rollout's id (status, pause, resume, abort)")
    .option("--name <name>", "start: what the change is (e.g. the pull request title)")
    .option("--commit <sha>", "start: the commit on the main branch to roll out (default: HEAD of this checkout)")
    .option("--supersede", "start: take over from the active rollout instead of waiting for it")
    .option("--follow", "start: wait for the end; exit 0 only when every stack succeeded, 1 when it halts or ends otherwise")
    .action(async (action: string, id: string | undefined, opts: Parameters<typeof rolloutCommand>[2]) => setCode(await rolloutCommand(action, id, opts, io)));

  program
    .command("drift")
    .description("the control plane's latest drift check of every stack, with what differs; exit 1 when any drifted or failed (needs TENANCY_URL and TENANCY_API_KEY)")
    .option("--stack <name>", "only this stack")
    .option("--tenant <id>", "only this tenant's stacks")
    .option("--check <stack>", "check this stack now instead of listing")
    .option("--json", "print JSON")
    .action(async (opts: Parameters<typeof driftCommand>[0]) => setCode(await driftCommand(opts, io)));

  return program;
}

/** Runs tenantctl; returns the exit code. Never lets a stack trace reach the user for bad input. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help"
        ? EXIT.ok
        : EXIT.usage;
    }
    if (err instanceof UsageError) {
      io.err(`tenantctl: ${err.message}`);
      return EXIT.usage;
    }
    if (err instanceof FleetError) {
      for (const p of err.problems) io.err(formatProblem(p));
      return EXIT.problems;
    }
    if (err instanceof PlanError) {
      io.err(`tenantctl: plan failed: ${err.message}`);
      return EXIT.problems;
    }
    if (err instanceof ProblemsError) {
      for (const l of err.lines) io.err(l);
      return EXIT.problems;
    }
    io.err(`tenantctl: internal error: ${(err as Error).message}`);
    if (process.env.TENANTCTL_DEBUG) io.err(String((err as Error).stack));
    return 70;
  }
}
