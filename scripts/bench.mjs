// `npm run bench -- <name>` runs bench/<name>/run.mjs after a build; it prints one figure
// per line beside the baseline it measures in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const name = process.argv[2];
const available = existsSync('bench')
  ? readdirSync('bench').filter((d) => existsSync(`bench/${d}/run.mjs`))
  : [];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>   (one of: ${available.join(', ') || 'none yet'})`);
  process.exit(2);
}
const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const run = spawnSync(process.execPath, [`bench/${name}/run.mjs`, ...process.argv.slice(3)], {
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
