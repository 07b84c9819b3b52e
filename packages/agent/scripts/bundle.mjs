// Bundles the agent into one file that runs on the host's node inside a machine; node-pty's
// native module cannot be bundled and is copied beside it.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: 'dist/bundle/agent.mjs',
  external: ['node-pty'],
  logLevel: 'warning',
});
