// package.json "main": what `pulumi preview --policy-pack ./policy` loads. Pulumi's policy runner
// (@pulumi/pulumi/cmd/run-policy-pack) `require`s this directory with its own ts-node hook
// registered and, depending on the CLI version, without PulumiPolicy.yaml's nodeargs. The pack is
// ESM TypeScript, so this CommonJS shim registers tsx's ESM loader itself (through the ESM build
// of tsx's API: its CommonJS build fails to register on Node 20) and imports index.ts; the runner
// awaits the exported promise.
module.exports = import("tsx/esm/api").then(({ register }) => {
  register();
  return import("./index.ts");
});
