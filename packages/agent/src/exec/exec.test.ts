import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { EXEC_STREAM, execStreamServerMessageSchema } from '@snapvm/protocol';
import { eventually, startTestAgent, type TestAgent } from '../testing/agent-fixture.js';

function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('exec', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(() => agent.cleanup());

  const exec = (body: unknown) => agent.request('POST', '/v1/exec', body);

  test('returns the exit code, stdout and stderr', async () => {
    const res = await exec({ command: ['/bin/sh', '-c', 'echo out; echo err >&2; exit 5'] });
    assert.equal(res.status, 200);
    assert.equal(res.body.exitCode, 5);
    assert.equal(res.body.stdout, 'out\n');
    assert.equal(res.body.stderr, 'err\n');
    assert.equal(res.body.timedOut, false);
  });

  test('feeds stdin, honours cwd and env, and keeps the agent token out of the environment', async () => {
    const res = await exec({
      command: ['/bin/sh', '-c', 'pwd; echo "$GREETING"; env | grep -c SNAPVM_AGENT_ || true; cat'],
      cwd: '/tmp',
      env: { GREETING: 'hello' },
      stdin: 'from stdin',
    });
    assert.equal(res.body.stdout, '/tmp\nhello\n0\nfrom stdin');
  });

  test('a timeout kills the whole process group', async () => {
    const started = Date.now();
    const res = await exec({
      command: ['/bin/sh', '-c', 'sleep 30 & echo $!; wait'],
      timeoutMs: 300,
    });
    assert.ok(Date.now() - started < 5000);
    assert.equal(res.body.timedOut, true);
    assert.equal(res.body.signal, 'SIGKILL');
    const background = Number(res.body.stdout.trim());
    await eventually(
      async () => isAlive(background),
      (alive) => !alive,
      'background job killed',
    );
  });

  test('a caller that goes away takes its command with it', async () => {
    const pidFile = `${agent.stateDir}/exec.pid`;
    const aborted = new AbortController();
    const pending = fetch(`${agent.base}/v1/exec`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.token}` },
      body: JSON.stringify({ command: ['/bin/sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`] }),
      signal: aborted.signal,
    }).catch(() => null);
    const pid = await eventually(
      async () => {
        try {
          return Number(readFileSync(pidFile, 'utf8'));
        } catch {
          return 0;
        }
      },
      (p) => p > 0,
      'pid file',
    );
    aborted.abort();
    await pending;
    await eventually(
      async () => isAlive(pid),
      (alive) => !alive,
      'command killed',
    );
  });

  test('output beyond the cap is dropped and flagged', async () => {
    const res = await exec({
      command: ['/bin/sh', '-c', 'head -c 5000 /dev/zero | tr "\\0" a'],
      maxOutputBytes: 1000,
    });
    assert.equal(res.body.stdout.length, 1000);
    assert.equal(res.body.stdoutTruncated, true);
    assert.equal(res.body.stderrTruncated, false);
  });

  test('bad requests are 4xx naming the field', async () => {
    const empty = await exec({ command: [] });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.field, 'command');
    const missing = await exec({ command: ['definitely-not-a-program'] });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.error.field, 'command');
    const timeout = await exec({ command: ['true'], timeoutMs: 'soon' });
    assert.equal(timeout.status, 400);
    assert.equal(timeout.body.error.field, 'timeoutMs');
    const env = await exec({ command: ['true'], env: { 'BAD NAME': 'x' } });
    assert.equal(env.status, 400);
    assert.match(env.body.error.field, /^env/);
  });

  test('the streaming variant relays stdin, stdout, stderr and the exit', async () => {
    const ws = agent.connect('/v1/exec');
    const frames: { stream: number; text: string }[] = [];
    const controls: { type: string; [k: string]: unknown }[] = [];
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data, isBinary) => {
      const bytes = Buffer.from(data as Buffer);
      if (isBinary) frames.push({ stream: bytes[0] as number, text: bytes.subarray(1).toString() });
      else controls.push(JSON.parse(bytes.toString()));
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(
      JSON.stringify({
        command: ['/bin/sh', '-c', 'read line; echo "got $line"; echo oops >&2; exit 4'],
      }),
    );
    ws.send(Buffer.from('hello\n'), { binary: true });
    await closed;
    for (const message of controls) execStreamServerMessageSchema.parse(message);
    assert.equal(controls[0]?.type, 'started');
    assert.deepEqual(controls.at(-1), { type: 'exit', code: 4, signal: null, timedOut: false });
    const text = (stream: number) =>
      frames
        .filter((f) => f.stream === stream)
        .map((f) => f.text)
        .join('');
    assert.equal(text(EXEC_STREAM.stdout), 'got hello\n');
    assert.equal(text(EXEC_STREAM.stderr), 'oops\n');
  });
});
