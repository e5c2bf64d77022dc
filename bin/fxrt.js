#!/usr/bin/env node
// `npx fxrt ...` from the project: the TypeScript CLI (scripts/fxrt.ts) run
// through the project's own tsx, whatever the working directory.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../scripts/fxrt.ts", import.meta.url));
// Finds the strategies of strategies/ first (it writes build/strategies.ts, which the CLI imports).
const strategies = new URL("../scripts/build-strategies.ts", import.meta.url).href;
const tsx = import.meta.resolve("tsx");
const run = spawnSync(process.execPath, ["--import", tsx, "--import", strategies, cli, ...process.argv.slice(2)], { stdio: "inherit" });
process.exitCode = run.status ?? 1;
