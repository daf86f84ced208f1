/**
 * Entry point the Pulumi CLI runs (through main.cjs): constructing the PolicyPack starts the
 * analyzer's gRPC server and prints its port. Import ./pack.ts instead to use the policies
 * in-process.
 */
import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, packArgs } from "./pack.ts";

new PolicyPack(PACK_NAME, packArgs);
