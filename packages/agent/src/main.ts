#!/usr/bin/env node
// snapvm-agent entry point (the package's bin): see agent-process.ts.
import { runAgentProcess } from './agent-process.js';

await runAgentProcess();
