import { describe, expect, it } from "vitest";
import { add, D_APP_PASSWORD, D_MASTER_PASSWORD, dedicatedStack, find, secret, tagsFor, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "secrets-stay-secret";
const D = dedicatedStack();
const PLAIN = "; it would be stored and shown in plaintext";
const MASTER = 'random:index/randomPassword:RandomPassword "acme-master-password".result';
const APP = 'random:index/randomPassword:RandomPassword "acme-app-password".result';
const SSM = "aws:ssm/parameter:Parameter";

describe(P, () => {
  it("passes passwords held only in password, secretString and provider password inputs", async () => {
    expect(await violationsOf(D)).toEqual([]);
  });

  it("reports a password copied into a tag", async () => {
    expect(await violationsAfter(D, (s) => ((find(s, "acme-db").inputs.tags as Record<string, string>).Password = D_MASTER_PASSWORD))).toEqual([
      violation(P, urn(D, "acme-db"), `input tags.Password contains the secret value of ${MASTER}${PLAIN}`),
    ]);
  });

  it("reports a connection string with the password in a plain SSM parameter", async () => {
    const value = `postgres://tenant_acme:${D_APP_PASSWORD}@db.acme.internal:5432/app`;
    expect(await violationsAfter(D, (s) => add(s, SSM, "acme-db-url", { name: "/tenancy/prod/acme/db-url", type: "String", value, tags: tagsFor(s, "acme") }))).toEqual([
      violation(P, urnOf(D.name, SSM, "acme-db-url"), `input value contains the secret value of ${APP}${PLAIN}`),
    ]);
  });

  it("finds the value even when the input is marked secret, because the SDK unwraps markers before policies run", async () => {
    const userData = secret(`#!/bin/sh\nexport PGPASSWORD=${D_APP_PASSWORD}\n`);
    const instance = { ami: "ami-0123", instanceType: "t3.small", userData, tags: tagsFor(D, "acme") };
    expect(await violationsAfter(D, (s) => add(s, "aws:ec2/instance:Instance", "acme-worker", instance))).toEqual([
      violation(P, urnOf(D.name, "aws:ec2/instance:Instance", "acme-worker"), `input userData contains the secret value of ${APP}${PLAIN}`),
    ]);
  });

  it("reports a password in a stack output", async () => {
    expect(await violationsAfter(D, (s) => (s.outputs.dbPassword = D_MASTER_PASSWORD))).toEqual([
      violation(P, urnOf(D.name, "pulumi:pulumi:Stack", "saas-tenancy-dedicated-acme-prod"), `stack output dbPassword contains the secret value of ${MASTER}${PLAIN}`),
    ]);
  });

  it("reports a password from a secret string reused elsewhere when no generator holds it", async () => {
    const handSet = "hand-set-password-1234";
    expect(
      await violationsAfter(D, (s) => {
        find(s, "acme-master-secret-version").inputs.secretString = secret(JSON.stringify({ username: "master", password: handSet }));
        find(s, "acme-flow-logs").inputs.name = `/tenancy/prod/acme/${handSet}`;
      }),
    ).toEqual([
      violation(P, urn(D, "acme-flow-logs"), `input name contains the secret value of aws:secretsmanager/secretVersion:SecretVersion "acme-master-secret-version".secretString field "password"${PLAIN}`),
    ]);
  });

  it("ignores values shorter than 8 characters", async () => {
    expect(
      await violationsAfter(D, (s) => {
        find(s, "acme-pg-role").inputs.password = secret("abc1234");
        find(s, "acme-flow-logs").inputs.name = "/abc1234";
      }),
    ).toEqual([]);
  });

  it("reports an SSM parameter with a credential name that is not SecureString", async () => {
    const param = { name: "/tenancy/prod/acme/api-token", type: "String", value: "not-yet", tags: tagsFor(D, "acme") };
    expect(await violationsAfter(D, (s) => add(s, SSM, "acme-token", param))).toEqual([
      violation(P, urnOf(D.name, SSM, "acme-token"), 'SSM parameter "/tenancy/prod/acme/api-token" looks like a credential but is type String; use SecureString'),
    ]);
    expect(await violationsAfter(D, (s) => add(s, SSM, "acme-token", { ...param, type: "SecureString", value: secret("tok-123456789") }))).toEqual([]);
  });

  it("reports placeholder secret values", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-master-secret-version").inputs.secretString = secret("changeme")))).toEqual([
      violation(P, urn(D, "acme-master-secret-version"), 'secretString value is a placeholder ("changeme"); set the real value out of band instead of committing a stand-in'),
    ]);
    const todo = secret(JSON.stringify({ username: "master", password: "TODO" }));
    expect(await violationsAfter(D, (s) => (find(s, "acme-master-secret-version").inputs.secretString = todo))).toEqual([
      violation(P, urn(D, "acme-master-secret-version"), 'secretString field "password" is a placeholder ("TODO"); set the real value out of band instead of committing a stand-in'),
    ]);
  });
});
