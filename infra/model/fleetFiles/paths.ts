/**
 * Where tenant and stack files live in the repository, and the schema modeline every tenant file
 * starts with. Paths here are repository-relative with "/" (what git and the control plane's
 * change records use); the tenantctl flags --tenants/--stacks map them onto other directories
 * (fleetDirsPath in ./overlay.ts).
 */
import { TENANT_SCHEMA_FILE } from "../fleet.ts";

export const TENANTS_DIR = "tenants";
export const STACKS_DIR = "stacks";
export const tenantPath = (tenantId: string) => `${TENANTS_DIR}/${tenantId}.yaml`;
export const stackPath = (stack: string) => `${STACKS_DIR}/Pulumi.${stack}.yaml`;

/** Where an offboarded tenant's file goes. The fleet loader reads only `tenants/*.yaml`, never below. */
export const ARCHIVE_DIR = `${TENANTS_DIR}/archive`;
export const archivePath = (tenantId: string) => `${ARCHIVE_DIR}/${tenantId}.yaml`;

/** Repository-relative path of the review rules (./codeowners.ts). */
export const CODEOWNERS_PATH = ".github/CODEOWNERS";

/** The first line of every tenant file: editors validate it against the generated JSON schema. */
export const SCHEMA_COMMENT = `# yaml-language-server: $schema=./${TENANT_SCHEMA_FILE}`;

/** A set of file changes: repository-relative path -> new content, null deletes the file. */
export type FileSet = Record<string, string | null>;
