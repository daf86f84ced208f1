// ESLint (flat config): typescript-eslint's recommended type-checked rules over every TypeScript
// file tsconfig.json covers. `npm run lint` runs it after the layer rules (.dependency-cruiser.cjs).
// Every rule turned off or tuned below says why in one line.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // Not sources: the built CLI, the pinned Node .ci/run fetches, bench and test scratch output.
  { ignores: ["node_modules/", "policy/node_modules/", "**/*.js", "**/*.cjs", "**/*.mjs", "test/cli/affected-fixture/", ".control-plane/", "dist/", ".ci/", "bench/.work/", ".tmp/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Fastify plugins, ports and test doubles are async by contract: `async` without an await keeps a throw a rejection.
      "@typescript-eslint/require-await": "off",
      // String(x) here follows a typeof/JSON.stringify narrowing of parsed or caught values, which the rule sees only as `{}`.
      "@typescript-eslint/no-base-to-string": "off",
      // A leading underscore marks a deliberately unused binding; rest siblings drop keys from a copy.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_", ignoreRestSiblings: true }],
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // Tests read JSON documents (JSON.parse, HTTP and CLI output) and check them with expect(): the assertions are the type check.
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      // Tests print rendered inputs (unknown) into messages; a "[object Object]" there fails the assertion visibly.
      "@typescript-eslint/restrict-template-expressions": "off",
      // Tests hand module functions and spies around by reference (expect(x.fn), destructured imports); none uses `this`.
      "@typescript-eslint/unbound-method": "off",
    },
  },
);
