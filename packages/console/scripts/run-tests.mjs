// Runs the console's compiled tests with node's test runner: `unit` = build/src (client logic,
// seconds), `e2e` = build/e2e (real Chromium against the real server). Node 20 has no glob in
// --test, so files are collected here. --experimental-websocket gives Node 20 the same
// WebSocket client as browsers, which the terminal connection tests use.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const kind = process.argv[2];
const roots = { unit: 'build/src', e2e: 'build/e2e' };
if (!roots[kind]) {
  console.error('usage: run-tests.mjs unit|e2e [substring filters]');
  process.exit(2);
}
const only = process.argv.slice(3);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', roots[kind]);
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.js') && (!only.length || only.some((o) => path.includes(o))))
      files.push(path);
  }
};
walk(root);
if (files.length === 0) {
  console.error(`no test files under ${root}: run \`tsc -b\` first`);
  process.exit(1);
}
const flags = ['--experimental-websocket', '--test', '--test-reporter=spec'];
// e2e files share one server per file and a browser each; run them one at a time on 2 cores.
if (kind === 'e2e') flags.push('--test-concurrency=1');
const result = spawnSync(process.execPath, [...flags, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
