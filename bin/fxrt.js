#!/usr/bin/env node
// `npx fxrt ...` from the project: the TypeScript CLI (scripts/fxrt.ts) run
// through the project's own tsx, whatever the working directory.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../scripts/fxrt.ts", import.meta.url));
const tsx = import.meta.resolve("tsx");
const run = spawnSync(process.execPath, ["--import", tsx, cli, ...process.argv.slice(2)], { stdio: "inherit" });
process.exitCode = run.status ?? 1;
