import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

describe('agent configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapvm-agent-config-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'a-long-enough-secret-token\n');
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads the token from its file and prefers the unix socket', () => {
    const config = loadConfig({
      SNAPVM_AGENT_SOCKET: '/run/snapvm/agent.sock',
      SNAPVM_AGENT_LISTEN: '127.0.0.1:9999',
      SNAPVM_AGENT_TOKEN_FILE: tokenFile,
    });
    assert.equal(config.token, 'a-long-enough-secret-token');
    assert.equal(config.socketPath, '/run/snapvm/agent.sock');
    assert.equal(config.listen, null);
    assert.equal(config.stateDir, '/var/lib/snapvm');
  });

  test('takes the start gate as a file descriptor of 3 or more', () => {
    const env = { SNAPVM_AGENT_TOKEN_FILE: tokenFile, SNAPVM_AGENT_SOCKET: '/tmp/a.sock' };
    assert.equal(loadConfig(env).startGateFd, null);
    assert.equal(loadConfig({ ...env, SNAPVM_AGENT_START_GATE: '3' }).startGateFd, 3);
    for (const bad of ['0', '2', 'x', '3.5'])
      assert.throws(
        () => loadConfig({ ...env, SNAPVM_AGENT_START_GATE: bad }),
        (err: Error) => err instanceof ConfigError && /SNAPVM_AGENT_START_GATE/.test(err.message),
      );
  });

  test('parses host:port, including IPv6 brackets', () => {
    const env = { SNAPVM_AGENT_TOKEN_FILE: tokenFile };
    assert.deepEqual(loadConfig({ ...env, SNAPVM_AGENT_LISTEN: '127.0.0.1:0' }).listen, {
      host: '127.0.0.1',
      port: 0,
    });
    assert.deepEqual(loadConfig({ ...env, SNAPVM_AGENT_LISTEN: '[::1]:7000' }).listen, {
      host: '::1',
      port: 7000,
    });
  });

  test('refuses a missing listener, token file, short token or bad number, saying which', () => {
    const listen = { SNAPVM_AGENT_LISTEN: '127.0.0.1:0' };
    assert.throws(() => loadConfig({ SNAPVM_AGENT_TOKEN_FILE: tokenFile }), /SNAPVM_AGENT_SOCKET/);
    assert.throws(() => loadConfig(listen), /SNAPVM_AGENT_TOKEN_FILE/);
    assert.throws(
      () => loadConfig({ ...listen, SNAPVM_AGENT_TOKEN_FILE: join(dir, 'missing') }),
      ConfigError,
    );
    const short = join(dir, 'short');
    writeFileSync(short, 'abc');
    assert.throws(() => loadConfig({ ...listen, SNAPVM_AGENT_TOKEN_FILE: short }), /16/);
    assert.throws(
      () =>
        loadConfig({ ...listen, SNAPVM_AGENT_TOKEN_FILE: tokenFile, SNAPVM_AGENT_SCROLLBACK: 'x' }),
      /SNAPVM_AGENT_SCROLLBACK/,
    );
    assert.throws(
      () =>
        loadConfig({ ...listen, SNAPVM_AGENT_TOKEN_FILE: tokenFile, SNAPVM_AGENT_LISTEN: 'a:b' }),
      /SNAPVM_AGENT_LISTEN/,
    );
  });
});
