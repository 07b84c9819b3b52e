import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  attachClient,
  eventually,
  renderScreen,
  renderText,
  sleep,
  startTestAgent,
  TerminalClient,
  type TestAgent,
} from '../testing/agent-fixture.js';

// A shell without rc files, so prompts and timing do not depend on the host's dotfiles.
const SHELL = ['/bin/bash', '--norc', '--noprofile'];

describe('terminal sessions', () => {
  let agent: TestAgent;
  const open: TerminalClient[] = [];
  before(async () => {
    agent = await startTestAgent({
      ringBytes: 64 * 1024,
      clientQueueBytes: 256 * 1024,
      maxSessions: 100,
    });
  });
  after(async () => {
    for (const client of open) client.ws.terminate();
    await agent.cleanup();
  });

  async function createSession(body: Record<string, unknown>): Promise<string> {
    const res = await agent.request('POST', '/v1/sessions', body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id;
  }

  async function attach(id: string, query = ''): Promise<TerminalClient> {
    const client = await attachClient(agent, id, query);
    open.push(client);
    return client;
  }

  test('stty size inside the shell follows a resize from the client', async () => {
    const id = await createSession({ command: SHELL, cols: 80, rows: 24 });
    const client = await attach(id, '?cols=100&rows=30');
    client.type('stty size\r');
    await client.waitForText('30 100');
    client.control({ type: 'resize', cols: 132, rows: 43 });
    await client.waitFor(() => client.controls.some((m) => m.type === 'size'), 'size message');
    client.type('stty size\r');
    await client.waitForText('43 132');
    const listed = await agent.request('GET', `/v1/sessions/${id}`);
    assert.equal(listed.body.cols, 132);
    assert.equal(listed.body.rows, 43);
    assert.equal(listed.body.attachedClients, 1);
  });

  test('the PTY takes the smallest size of the attached clients', async () => {
    const id = await createSession({ command: SHELL });
    const big = await attach(id, '?cols=150&rows=50');
    const small = await attach(id, '?cols=90&rows=20');
    big.type('stty size\r');
    await big.waitForText('20 90');
    await small.close();
    await eventually(
      () => agent.request('GET', `/v1/sessions/${id}`),
      (r) => r.body.cols === 150 && r.body.rows === 50,
      'size back to the remaining client',
    );
  });

  test('a reattach restores a full-screen program on the alternate screen', async () => {
    const id = await createSession({ command: SHELL, cols: 80, rows: 24 });
    const first = await attach(id);
    // Enter the alternate screen, draw, then push far more than the 64 KiB ring through it,
    // so the mode switch is long gone from the raw buffer when the second client attaches.
    const script =
      "printf '\\033[?1049h\\033[2J\\033[1;1Htop-line'; " +
      "for i in $(seq 1 3000); do printf '\\033[12;5Hcounter %05d \\033[31mred\\033[0m' $i; done; " +
      "printf '\\033[20;3Hdone-drawing'; sleep 60\r";
    first.type(script);
    await first.waitForText('done-drawing', 10000);
    await sleep(200);
    await first.close();

    const second = await attach(id);
    const attached = second.attached;
    assert.equal(attached?.mode, 'snapshot');
    assert.ok(second.snapshot.length > 0, 'a snapshot was sent');
    const restored = await renderScreen([second.snapshot, second.stream], 80, 24);
    assert.equal(restored.bufferType, 'alternate');
    assert.equal(restored.lines[0], 'top-line');
    assert.equal(restored.lines[11], '    counter 03000 red');
    assert.equal(restored.lines[19], '  done-drawing');
    // The same bytes as a client that saw everything: compare with the original stream.
    const original = await renderScreen([first.stream], 80, 24);
    assert.deepEqual(restored.lines, original.lines);
    assert.deepEqual(restored.cursor, original.cursor);
    second.type('\x03');
  });

  test('repeated reattaches to an unchanged screen get the same snapshot, new output a new one', async () => {
    const id = await createSession({ command: SHELL, cols: 60, rows: 12 });
    const typist = await attach(id);
    typist.type('echo first-$((1+1))\r');
    await typist.waitForText('first-2');
    await sleep(200);
    const a = await attach(id);
    const b = await attach(id);
    assert.ok(a.snapshot.length > 0);
    assert.deepEqual(b.snapshot, a.snapshot);
    typist.type('echo second-$((2+2))\r');
    await typist.waitForText('second-4');
    await sleep(200);
    const c = await attach(id);
    const screen = await renderScreen([c.snapshot, c.stream], 60, 12);
    assert.ok(
      screen.lines.some((l) => l === 'second-4'),
      screen.lines.join('\n'),
    );
  });

  test('the terminal socket declines permessage-deflate, so snapshots are sent uncompressed', async () => {
    // Compressing a 600 KiB snapshot would cost the main thread that forwards every
    // session's output milliseconds per reattach; the ws client offers it by default.
    const id = await createSession({ command: SHELL, cols: 60, rows: 12 });
    const client = await attach(id);
    assert.ok(client.snapshot.length > 0);
    assert.equal(client.ws.extensions, '');
  });

  test('resuming from an offset yields every byte exactly once', async () => {
    const id = await createSession({
      command: [
        '/bin/bash',
        '-c',
        'for i in $(seq 1 400); do echo line-$i; sleep 0.003; done; sleep 60',
      ],
    });
    const first = await attach(id, '?offset=0');
    assert.equal(first.attached?.mode, 'resume');
    assert.equal(first.attached?.offset, 0);
    await first.waitForText('line-100\r\n');
    await first.close();
    const seen = first.stream.length;
    await sleep(300);

    const second = await attach(id, `?offset=${seen}`);
    assert.equal(second.attached?.mode, 'resume');
    assert.equal(second.attached?.offset, seen);
    await second.waitForText('line-400\r\n', 10000);
    const lines = Buffer.concat([first.stream, second.stream]).toString('utf8').split('\r\n');
    lines.pop();
    assert.deepEqual(
      lines,
      Array.from({ length: 400 }, (_, i) => `line-${i + 1}`),
    );
  });

  test('a snapshot taken during fast output joins the stream without gaps or repeats', async () => {
    // Lines scroll through a 64 KiB ring far faster than a person types, and the model lags;
    // the joining client must still end up with every line once, in order.
    const id = await createSession({
      command: [
        '/bin/bash',
        '-c',
        'sleep 0.2; for i in $(seq 1 30000); do echo n-$i; done; echo all-done; sleep 60',
      ],
      cols: 40,
      rows: 10,
    });
    const full = await attach(id, '?offset=0');
    await full.waitForText('n-5000\r\n', 10000);
    const joined = await attach(id, '?history=200');
    assert.equal(joined.attached?.mode, 'snapshot');
    await joined.waitForText('all-done', 15000);
    const text = (await renderText([joined.snapshot, joined.stream], 40, 10)).filter((l) =>
      l.startsWith('n-'),
    );
    const numbers = text.map((l) => Number(l.slice(2)));
    assert.ok(numbers.length > 1000, `rendered ${numbers.length} lines`);
    for (let i = 1; i < numbers.length; i++) {
      assert.equal(numbers[i], (numbers[i - 1] as number) + 1, `line after n-${numbers[i - 1]}`);
    }
    assert.equal(numbers.at(-1), 30000);
  });

  test('older scrollback than the snapshot carries is readable as text', async () => {
    const id = await createSession({
      command: ['/bin/bash', '-c', 'for i in $(seq 1 600); do echo old-$i; done; sleep 60'],
      cols: 40,
      rows: 10,
    });
    const client = await attach(id, '?offset=0');
    await client.waitForText('old-600\r\n');
    await sleep(200);
    const recent = await agent.request('GET', `/v1/sessions/${id}/history?lines=5`);
    assert.equal(recent.status, 200);
    const last = recent.body.lines.filter((l: string) => l !== '');
    assert.equal(last.at(-1), 'old-600');
    const older = await agent.request('GET', `/v1/sessions/${id}/history?lines=3&before=3`);
    assert.deepEqual(older.body.lines, ['old-1', 'old-2', 'old-3']);
    assert.equal(older.body.from, 0);
    const bad = await agent.request('GET', `/v1/sessions/${id}/history?lines=0`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'lines');
  });

  test('a client joining a flood gets a real snapshot although the model lags the ring', async () => {
    // Colour changes every few bytes make the model parse far slower than the PTY writes,
    // so it falls megabytes behind the 64 KiB ring.
    const file = join(agent.stateDir, 'flood.txt');
    const line = Array.from(
      { length: 25 },
      (_, i) => `\x1b[3${i % 8}mab\x1b[4${(i * 3) % 8}mcd`,
    ).join('');
    writeFileSync(file, `${Array.from({ length: 100_000 }, (_, i) => `${line}${i}`).join('\n')}\n`);
    const id = await createSession({
      command: ['/bin/bash', '-c', `sleep 0.2; cat ${file}; echo flood-over; sleep 60`],
      cols: 100,
      rows: 20,
    });
    const full = await attach(id, '?offset=0');
    await full.waitFor(() => full.streamLength > 5_000_000, '5 MB of output', 20000);
    const joined = await attach(id);
    assert.equal(joined.attached?.mode, 'snapshot');
    assert.ok(joined.snapshot.length > 0);
    await joined.waitForText('flood-over', 30000);
    await full.waitForText('flood-over', 30000);
    const a = await renderScreen([full.stream], 100, 20);
    const b = await renderScreen([joined.snapshot, joined.stream], 100, 20);
    assert.deepEqual(b.lines, a.lines);
  });

  test('an offset no longer buffered falls back to a screen snapshot', async () => {
    const id = await createSession({
      command: [
        '/bin/bash',
        '-c',
        'head -c 200000 /dev/zero | tr "\\0" "y"; echo; echo the-end; sleep 60',
      ],
    });
    await eventually(
      () => agent.request('GET', `/v1/sessions/${id}`),
      // 200,000 y, then \r\n, then the-end\r\n
      (r) => r.body.offset >= 200011,
      'all output produced',
    );
    const client = await attach(id, '?offset=5');
    assert.equal(client.attached?.mode, 'snapshot');
    const start = client.attached?.offset as number;
    await client.waitFor(() => start + client.streamLength >= 200011, 'the replay after it');
    const screen = await renderScreen([client.snapshot, client.stream], 80, 24);
    assert.ok(screen.lines.includes('the-end'), screen.lines.join('\n'));
  });

  test('two clients see the same output and both can type', async () => {
    const id = await createSession({ command: SHELL });
    const a = await attach(id, '?offset=0');
    const b = await attach(id, '?offset=0');
    a.type('echo from-a-$((6*7))\r');
    await b.waitForText('from-a-42');
    b.type('echo from-b-$((7*7))\r');
    await a.waitForText('from-b-49');
    await b.waitForText('from-b-49');
    await sleep(100);
    assert.equal(a.text(), b.text());
  });

  test('a slow client is dropped while a fast one keeps streaming', async () => {
    // Loopback sockets absorb several MB in kernel buffers before the agent sees any backlog.
    const total = 24_000_000;
    const id = await createSession({
      command: [
        '/bin/bash',
        '-c',
        `sleep 0.3; head -c ${total} /dev/zero | tr "\\0" "x"; sleep 60`,
      ],
    });
    const fast = await attach(id, '?offset=0');
    const slow = await attach(id, '?offset=0');
    // Stop reading: the agent's queue for this client grows until it passes the limit.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await fast.waitFor(
      () => fast.streamLength >= total,
      `${total} bytes on the fast client`,
      20000,
    );
    assert.equal(fast.streamLength, total);
    await eventually(
      () => agent.request('GET', `/v1/sessions/${id}`),
      (r) => r.body.attachedClients === 1,
      'the slow client dropped',
    );
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    assert.equal(await slow.closed, 4008);
  });

  test('clients get the exit code and the session stays listable as exited', async () => {
    const id = await createSession({ command: ['/bin/bash', '-c', 'read x; exit 7'] });
    const client = await attach(id);
    client.type('go\r');
    await client.waitFor(() => client.controls.some((m) => m.type === 'exit'), 'exit message');
    assert.equal(client.controls.find((m) => m.type === 'exit')?.code, 7);
    assert.equal(await client.closed, 1000);
    const listed = await agent.request('GET', `/v1/sessions/${id}`);
    assert.equal(listed.body.state, 'exited');
    assert.equal(listed.body.exitCode, 7);
  });

  test('a detached session keeps running and ends by DELETE', async () => {
    const id = await createSession({ command: SHELL });
    const client = await attach(id);
    client.type('sleep 0.2; echo still-here > /dev/null\r');
    await client.close();
    await sleep(300);
    const listed = await agent.request('GET', '/v1/sessions');
    const mine = listed.body.items.find((s: { id: string }) => s.id === id);
    assert.equal(mine.state, 'running');
    assert.equal(mine.attachedClients, 0);
    assert.equal((await agent.request('DELETE', `/v1/sessions/${id}`)).status, 204);
    assert.equal((await agent.request('GET', `/v1/sessions/${id}`)).status, 404);
  });

  test('an idle detached session ends after its timeout', async () => {
    const id = await createSession({ command: SHELL, idleTimeoutSeconds: 1 });
    await eventually(
      () => agent.request('GET', `/v1/sessions/${id}`),
      (r) => r.body.state === 'exited',
      'idle session ended',
      4000,
    );
  });

  test('bad session input is refused with a 4xx naming the field', async () => {
    const cols = await agent.request('POST', '/v1/sessions', { cols: 'wide' });
    assert.equal(cols.status, 400);
    assert.equal(cols.body.error.field, 'cols');
    const cmd = await agent.request('POST', '/v1/sessions', { command: ['no-such-program-x'] });
    assert.equal(cmd.status, 422);
    assert.equal(cmd.body.error.field, 'command');
    const cwd = await agent.request('POST', '/v1/sessions', { cwd: '/no/such/dir' });
    assert.equal(cwd.status, 422);
    assert.equal(cwd.body.error.field, 'cwd');
    const extra = await agent.request('POST', '/v1/sessions', { colour: 'red' });
    assert.equal(extra.status, 400);
    assert.equal(extra.body.error.field, 'colour');
    const json = await agent.request('POST', '/v1/sessions', '{"cols": 80');
    assert.equal(json.status, 400);
    assert.equal(json.body.error.code, 'invalid_json');
    const missing = await agent.request('GET', '/v1/sessions/nope');
    assert.equal(missing.status, 404);
  });

  test('a malformed control message closes the socket with 4000', async () => {
    const id = await createSession({ command: SHELL });
    const client = await attach(id);
    client.control({ type: 'resize', cols: -5 });
    assert.equal(await client.closed, 4000);
    assert.equal(client.controls.at(-1)?.type, 'error');
  });

  test('attach with a bad query or an unknown session is refused before upgrading', async () => {
    const id = await createSession({ command: SHELL });
    const badQuery = new TerminalClient(agent.connect(`/v1/sessions/${id}/attach?cols=0`));
    await assert.rejects(badQuery.opened, /400/);
    const unknown = new TerminalClient(agent.connect('/v1/sessions/missing/attach'));
    await assert.rejects(unknown.opened, /404/);
    const noToken = new TerminalClient(agent.connect(`/v1/sessions/${id}/attach`, {}));
    await assert.rejects(noToken.opened, /401/);
  });

  test('the number of running sessions is capped', async () => {
    const small = await startTestAgent({ maxSessions: 2 });
    try {
      const body = { command: ['/bin/sh', '-c', 'sleep 30'] };
      assert.equal((await small.request('POST', '/v1/sessions', body)).status, 201);
      const second = await small.request('POST', '/v1/sessions', body);
      assert.equal(second.status, 201);
      const third = await small.request('POST', '/v1/sessions', body);
      assert.equal(third.status, 409);
      assert.equal(third.body.error.code, 'too_many_sessions');
      await small.request('DELETE', `/v1/sessions/${second.body.id}`);
      assert.equal((await small.request('POST', '/v1/sessions', body)).status, 201);
    } finally {
      await small.cleanup();
    }
  });
});
