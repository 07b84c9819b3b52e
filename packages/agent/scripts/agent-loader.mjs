// snapvm-agent: the entry of the bundle (dist/bundle/agent.mjs, run as `node agent.mjs`). It
// runs agent.cjs, the bundled agent, with the V8 code cache that `npm run bundle` made for it
// (agent.cjs.cache): compiling ~1 MB of JavaScript is a large part of a machine's cold start.
// V8 checks that a cache fits its own version, flags and this exact source, and otherwise
// rejects it: the agent then compiles as usual, only slower. Also the screen-model workers'
// entry point.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const file = fileURLToPath(new URL('./agent.cjs', import.meta.url));
const cacheFile = `${file}.cache`;

function compile() {
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // No cache (a development build): compile as usual.
  }
  // The same wrapper as node's own CommonJS loader.
  const source = `(function (exports, require, module, __filename, __dirname) { ${readFileSync(file, 'utf8')}\n});`;
  const script = new Script(source, { filename: file, cachedData });
  if (script.cachedDataRejected) {
    const msg = 'the code cache does not fit this node (made by another version?); compiling';
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg })}\n`,
    );
  }
  return script;
}

/** Evaluates the bundled agent; returns its exports and the compiled script. */
function loadAgent() {
  const script = compile();
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return { agent: module.exports, script };
}

if (process.env.SNAPVM_AGENT_CODE_CACHE === 'write') {
  // scripts/bundle.mjs, in a clean node like the machines': the agent is evaluated but not
  // started, so the cache also holds what loading it compiles (the zod schemas, say).
  writeFileSync(cacheFile, loadAgent().script.createCachedData());
} else {
  loadAgent().agent.runAgentProcess();
}
