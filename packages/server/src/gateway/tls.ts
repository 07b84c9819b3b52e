// HTTPS for the main origin and every machine host: a certificate and key given by file
// (a wildcard for the apps domain), or one generated and self-signed for local use.
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, type TlsConfig } from '../config.js';

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
  if (tls.mode === 'files') return readGiven(tls.certFile, tls.keyFile);
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

/** The operator's files, checked at start: a wrong path or key fails here, naming the setting. */
async function readGiven(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const read = (name: string, file: string) =>
    readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(`${name}: cannot read ${file} (${err.code ?? err.message})`);
    });
  const cert = await read('SNAPVM_TLS_CERT', certFile);
  const key = await read('SNAPVM_TLS_KEY', keyFile);
  let matches: boolean;
  try {
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new ConfigError(
      `SNAPVM_TLS_CERT/SNAPVM_TLS_KEY: not a PEM certificate and key (${(err as Error).message})`,
    );
  }
  if (!matches) throw new ConfigError(`SNAPVM_TLS_KEY: ${keyFile} is not the key of ${certFile}`);
  return { cert, key };
}
