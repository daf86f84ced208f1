/**
 * The layer rules of docs/architecture.md ("Boundary rules"), checked by `npm run lint` and
 * .ci/run. Layers, top to bottom: cli, bench -> automation -> plan -> policy, infra -> infra/model.
 * A forbidden import fails with the rule's name. Type-only imports count too
 * (tsPreCompilationDeps): a layer that names another's types depends on it.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "model-is-pure",
      severity: "error",
      comment: "infra/model is the pure core every layer shares: no Pulumi, no AWS SDK, no automation, cli or plan (docs/architecture.md).",
      from: { path: "^infra/model/" },
      // Resolved packages are under node_modules/; an unresolvable one keeps its bare name.
      to: { path: ["(^|/)node_modules/@pulumi/", "^@pulumi/", "(^|/)node_modules/@aws-sdk/", "^@aws-sdk/", "^(automation|cli|plan)/"] },
    },
    {
      name: "infra-is-what-pulumi-up-loads",
      severity: "error",
      comment: "infra/ is exactly what `pulumi up` loads: it never imports automation, cli or plan (docs/architecture.md).",
      from: { path: "^infra/", pathNot: "^infra/model/" },
      to: { path: "^(automation|cli|plan)/" },
    },
    {
      name: "policy-stands-alone",
      severity: "error",
      comment: "The policy pack runs alone under the Pulumi CLI: it never imports plan, automation or cli (docs/architecture.md).",
      from: { path: "^policy/" },
      to: { path: "^(plan|automation|cli)/" },
    },
    {
      name: "plan-below-automation-and-cli",
      severity: "error",
      comment: "The offline plan engine never imports automation or cli (docs/architecture.md).",
      from: { path: "^plan/" },
      to: { path: "^(automation|cli)/" },
    },
    {
      name: "automation-never-imports-cli",
      severity: "error",
      comment: "tenantctl calls the control plane's public face, never the other way round (docs/architecture.md).",
      from: { path: "^automation/" },
      to: { path: "^cli/" },
    },
    {
      name: "no-circular",
      severity: "error",
      comment: "No import cycles (docs/architecture.md).",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    // Not followed, but not excluded either: an excluded module's imports vanish from every rule.
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^test/cli/affected-fixture/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".mjs", ".cjs", ".js", ".d.ts", ".json"],
    },
  },
};
