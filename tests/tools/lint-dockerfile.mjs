// Lints Dockerfiles with dockerfile-utils (the parser and rules behind the Dockerfile language
// server): unknown instructions, bad arguments, flags and ports. Exits 1 on any error or warning.
// Usage: node lint-dockerfile.mjs Dockerfile...
import { readFileSync } from "node:fs";
import { validate } from "dockerfile-utils";

let failed = false;
for (const file of process.argv.slice(2)) {
  const problems = validate(readFileSync(file, "utf8"));
  for (const problem of problems) {
    failed = true;
    console.log(`${file}:${problem.range.start.line + 1}: ${problem.message}`);
  }
  if (problems.length === 0) console.log(`${file}: clean`);
}
process.exit(failed ? 1 : 0);
