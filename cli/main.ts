import { Command, CommanderError, Option } from "commander";
import { FleetError, formatProblem } from "../infra/model/problems.ts";
import { affectedCommand } from "./commands/affected.ts";
import { costCommand } from "./commands/cost.ts";
import { newCommand } from "./commands/new.ts";
import { routesCommand } from "./commands/routes.ts";
import { validateCommand } from "./commands/validate.ts";
import { EXIT, ProblemsError, UsageError, processIo, type Io } from "./io.ts";

const collect = (value: string, prior: string[] = []) => [...prior, value];

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

  withDirs(program.command("validate").description("validate every tenant and stack file")).action((opts) =>
    setCode(validateCommand(opts, io)),
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
  ).action((id: string, opts) => setCode(newCommand(id, opts, io)));

  withDirs(program.command("routes").description("print the routing table: tenant -> URL, deployment, stack"))
    .option("--json", "print JSON")
    .action((opts) => setCode(routesCommand(opts, io)));

  program
    .command("affected")
    .description("print the stacks a change touches (git diff of tenants/, stacks/, infra/, policy/), one a line")
    .requiredOption("--base <ref>", "the revision to compare with, e.g. origin/main")
    .option("--head <ref>", "the revision to compare (default: the working tree, untracked files included)")
    .option("--json", "print { stacks, details: [{ name, reasons, inBase, inHead }] }")
    .option("--project <dir>", "directory holding Pulumi.yaml (default: nearest from the current directory)")
    .action(async (opts) => setCode(await affectedCommand(opts, io)));

  withDirs(
    program
      .command("cost")
      .description("monthly cost per stack and per tenant from the rendered resources and a dated price table")
      .option("--stack <name>", "a stack to price, repeatable (default: every stack)", collect)
      .option("--all", "price every stack in the stacks directory")
      .option("--json", "print the report as JSON"),
  ).action(async (opts) => setCode(await costCommand(opts, io)));

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
    if (err instanceof ProblemsError) {
      for (const l of err.lines) io.err(l);
      return EXIT.problems;
    }
    io.err(`tenantctl: internal error: ${(err as Error).message}`);
    if (process.env.TENANTCTL_DEBUG) io.err(String((err as Error).stack));
    return 70;
  }
}
