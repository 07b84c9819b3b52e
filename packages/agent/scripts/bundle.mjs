// Bundles the agent into dist/bundle/, the directory mounted read-only at /opt/snapvm in every
// machine: agent.cjs (the whole agent in one script), agent.cjs.cache (V8's code cache for it),
// agent.mjs (the entry, scripts/agent-loader.mjs: runs agent.cjs with that cache; also the
// screen-model workers' entry) and the parts of node-pty it loads at run time (its JS and
// native module cannot be bundled, so they are copied).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

/**
 * zod includes error messages in some forty languages (~0.35 MB of the bundle) and configures
 * English; the agent only ever uses English, so the locale index is replaced by English alone.
 * Should zod move its files, nothing matches here and the bundle is only larger.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]/.test(args.importer)
        ? { path: 'zod-locales', namespace: 'zod-en' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, () => ({
      contents: "export { default as en } from 'zod/v4/locales/en.js';",
      resolveDir: process.cwd(),
    }));
  },
};

const out = 'dist/bundle';
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { agent: 'src/agent-process.ts' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  // CommonJS, so that agent.mjs can compile it with node:vm and a code cache (V8 has no such
  // option for ES modules in node 20).
  format: 'cjs',
  outdir: out,
  outExtension: { '.js': '.cjs' },
  external: ['node-pty'],
  banner: { js: "const __agentUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__agentUrl' },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});
cpSync('scripts/agent-loader.mjs', join(out, 'agent.mjs'));
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

// Made by this node for its own V8; a machine's node that differs rejects it (see the loader).
const cache = spawnSync(process.execPath, [join(out, 'agent.mjs')], {
  env: { PATH: process.env.PATH ?? '', SNAPVM_AGENT_CODE_CACHE: 'write' },
  stdio: 'inherit',
});
if (cache.status !== 0) throw new Error('making the code cache of agent.cjs failed');
