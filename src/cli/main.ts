#!/usr/bin/env node
// The `sentinel` executable: builds the command tree and turns every outcome into an exit code.
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv);
