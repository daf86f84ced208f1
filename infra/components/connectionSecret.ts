import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PG_SSLMODE, RDS_CA_BUNDLE_URL } from "../model/database.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface ConnectionSecretArgs {
  ctx: StackContext;
  tenant: string;
  /** databaseSecretName(). */
  secretName: string;
  kmsKeyArn: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  database: string;
  user: string;
  /** A Pulumi secret. */
  password: pulumi.Input<string>;
  schema: string;
  /** While the tenant's resources change hands between stacks (infra/model/handover.ts): never deleted by an update. */
  retainOnDelete?: boolean;
}

/**
 * The tenant application's connection document, `{ host, port, database, user, password, schema, sslmode, sslrootcertUrl }`,
 * in a namespaced secret encrypted with the key that protects the tenant's secrets. The document
 * is built with pulumi.jsonStringify and wrapped as a secret: it never exists in plain text in
 * the state or in the plan.
 * Child names: `<name>` (secret, secret version).
 */
export class ConnectionSecret extends pulumi.ComponentResource {
  readonly secretArn: pulumi.Output<string>;

  constructor(name: string, args: ConnectionSecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("ConnectionSecret"), name, {}, opts);
    const retain = args.retainOnDelete ? { retainOnDelete: true } : {};
    const secret = new aws.secretsmanager.Secret(
      name,
      { name: args.secretName, description: `PostgreSQL connection of tenant ${args.tenant}`, kmsKeyId: args.kmsKeyArn, tags: tagsFor(args.ctx, args.tenant) },
      { parent: this, ...retain },
    );
    new aws.secretsmanager.SecretVersion(
      name,
      {
        secretId: secret.id,
        secretString: pulumi.secret(
          pulumi.jsonStringify({
            host: args.host,
            port: args.port,
            database: args.database,
            user: args.user,
            password: args.password,
            schema: args.schema,
            // Clients verify the server certificate and host name (never sslmode=require).
            sslmode: PG_SSLMODE,
            sslrootcertUrl: RDS_CA_BUNDLE_URL,
          }),
        ),
      },
      { parent: this, ...retain },
    );
    this.secretArn = secret.arn;
    this.registerOutputs({ secretName: args.secretName });
  }
}
