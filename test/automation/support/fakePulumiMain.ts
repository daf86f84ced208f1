/** Entry of the executable test double (installFakePulumiBinary): `pulumi <args>`. */
import { readFileSync } from "node:fs";
import { runFakePulumi, type FakePulumiOptions } from "./fakePulumiCli.ts";

const options = JSON.parse(readFileSync(process.env.FAKE_PULUMI_OPTIONS ?? "", "utf8")) as FakePulumiOptions;
const controller = new AbortController();
process.on("SIGINT", () => controller.abort());
const result = await runFakePulumi(process.argv.slice(2), process.cwd(), options, { signal: controller.signal });
process.stdout.write(result.stdout);
process.stderr.write(result.stderr);
process.exitCode = result.code;
