// Runs every compiled test file with node's own test runner. Node 20 has no glob support
// in --test, so the files are collected here; integration tests need the build (pretest).
// Arguments are substring filters on the file paths (`node scripts/test.mjs runtime/`).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const roots = [
  'packages/protocol/dist',
  'packages/agent/dist',
  'packages/server/dist',
  'packages/console/build',
].map((dir) => join(root, dir));
const only = process.argv.slice(2);
// The runtime, lifecycle, gateway and console end-to-end tests boot real machines (user
// namespaces, cgroups, a bridge): say so once here rather than have them vanish.
if (process.platform !== 'linux' || process.getuid?.() !== 0) {
  console.error("SnapVM's tests boot real machines and need Linux and root: run them as root.");
  process.exit(1);
}
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.js') && (!only.length || only.some((o) => path.includes(o))))
      files.push(path);
  }
};
for (const root of roots) {
  try {
    walk(root);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
}
if (files.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
// --experimental-websocket gives Node 20 the browsers' WebSocket client, which the console's
// terminal connection tests use. Files run one at a time: machines, PGlite and Chromium
// each want most of this 2-core host.
const flags = [
  '--experimental-websocket',
  '--test',
  '--test-concurrency=1',
  '--test-reporter=spec',
];
const result = spawnSync(process.execPath, [...flags, ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
