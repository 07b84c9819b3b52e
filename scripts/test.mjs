// Runs every compiled test file with node's own test runner. Node 20 has no glob support
// in --test, so the files are collected here; integration tests need the build (pretest).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages/protocol/dist', 'packages/agent/dist', 'packages/server/dist'];
const only = process.argv.slice(2);
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
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
