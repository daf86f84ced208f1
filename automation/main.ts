/**
 * `npm run control-plane`: the billing webhook service and its workers (docs/control-plane.md).
 *
 *   npm run control-plane                      start (settings: environment or TENANCY_CONFIG file)
 *   npm run control-plane -- hash-api-key NAME print a new API key and its line for TENANCY_API_KEYS
 */
import { delimiter, join, resolve } from "node:path";
import { ConfigError, loadConfig } from "./config.ts";
import type { ControlPlane } from "./controlPlane.ts";
import { describeFailure } from "./failure.ts";
import { newApiKey } from "./http/apiKeys.ts";

const PROJECT_DIR = resolve(import.meta.dirname, "..");


async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === "hash-api-key") {
    const name = argv[1];
    if (!name || !/^[\w.-]+$/.test(name)) {
      process.stderr.write("usage: npm run control-plane -- hash-api-key NAME   (NAME: letters, digits, . _ -)\n");
      return 2;
    }
    const k = newApiKey(name);
    process.stdout.write(`API key (give it to the client; it is not stored anywhere):\n  ${k.key}\n\nAdd to the TENANCY_API_KEYS file under keys:\n${k.yaml}\n`);
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(`unknown argument ${argv[0]}; usage: npm run control-plane [-- hash-api-key NAME]\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig({ projectDir: PROJECT_DIR });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`control plane cannot start:\n${err.lines.map((l) => `  ${l}`).join("\n")}\nSettings are documented in docs/control-plane.md.\n`);
      return 2;
    }
    throw err;
  }
  // RemoteWorkspace (Pulumi Deployments) always runs the `pulumi` on PATH.
  if (config.pulumiRoot) process.env.PATH = `${join(config.pulumiRoot, "bin")}${delimiter}${process.env.PATH ?? ""}`;

  let cp: ControlPlane;
  try {
    // Loaded only once the settings are good: a bad setting is reported without loading it all.
    const { ControlPlane } = await import("./controlPlane.ts");
    cp = await ControlPlane.create(config);
    await cp.start();
  } catch (err) {
    // One line, no stack trace: what failed and (for the embedded PostgreSQL) what to do.
    process.stderr.write(`control plane cannot start: ${describeFailure(err)}\n`);
    return 2;
  }
  cp.log.info({ port: config.port, host: config.host }, "listening");
  // Shut down in order: stop taking work, let running updates finish
  // (TENANCY_SHUTDOWN_GRACE_SECONDS), stop pg-boss, then the database.
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      cp.log.info({ signal }, "shutting down");
      cp.stop().then(done, (err: unknown) => {
        cp.log.error({ err: { message: describeFailure(err) } }, "shutdown failed");
        done();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGHUP", () => stop("SIGHUP"));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`control plane failed: ${describeFailure(err)}\n`);
    process.exit(1);
  },
);
