// HTTPS for the main origin and every machine host: a certificate and key given by file
// (a wildcard for the apps domain), or one generated and self-signed for local use.
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TlsConfig } from '../config.js';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

const run = promisify(execFile);

export async function loadTls(
  tls: TlsConfig,
  context: { dataDir: string; publicHost: string; appsDomain: string },
): Promise<TlsMaterial | null> {
  if (tls.mode === 'off') return null;
  if (tls.mode === 'files')
    return { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) };
  const dir = join(context.dataDir, 'tls');
  const cert = join(dir, 'self-signed.crt');
  const key = join(dir, 'self-signed.key');
  if (!(await stat(cert).catch(() => null))) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const names = new Set([context.publicHost, context.appsDomain, `*.${context.appsDomain}`]);
    const alt = [...names].map((name) => (/^[\d.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`));
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '825',
      '-subj',
      `/CN=${context.publicHost}`,
      '-addext',
      `subjectAltName=${alt.join(',')}`,
      '-keyout',
      key,
      '-out',
      cert,
    ]);
  }
  return { cert: await readFile(cert), key: await readFile(key) };
}
