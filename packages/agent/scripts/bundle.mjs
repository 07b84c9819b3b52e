// Bundles the agent into dist/bundle/, the directory mounted read-only at /opt/snapvm in every
// machine: agent.mjs (one file, also the screen-model workers' entry) and the parts of
// node-pty it loads at run time (its JS and native module cannot be bundled, so they are
// copied).
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

const out = 'dist/bundle';
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { agent: 'src/main.ts' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outdir: out,
  outExtension: { '.js': '.mjs' },
  external: ['node-pty'],
  // CommonJS dependencies call require(); ESM output has none unless we provide it.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
});

const require = createRequire(import.meta.url);
const ptyRoot = dirname(require.resolve('node-pty/package.json'));
const ptyOut = join(out, 'node_modules/node-pty');
mkdirSync(join(ptyOut, 'build/Release'), { recursive: true });
cpSync(join(ptyRoot, 'package.json'), join(ptyOut, 'package.json'));
cpSync(join(ptyRoot, 'lib'), join(ptyOut, 'lib'), {
  recursive: true,
  filter: (src) => !src.endsWith('.map') && !src.endsWith('.test.js'),
});
cpSync(join(ptyRoot, 'build/Release/pty.node'), join(ptyOut, 'build/Release/pty.node'));
writeFileSync(
  join(out, 'README'),
  'snapvm-agent bundle: run `node agent.mjs` (see docs/agent.md)\n',
);
