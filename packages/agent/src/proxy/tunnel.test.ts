import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { AGENT_TUNNEL_PROTOCOL } from '@snapvm/protocol';
import { startTestAgent, type TestAgent } from '../testing/agent-fixture.js';

/** Sends a tunnel request on a raw socket and reads the agent's answer head (and body). */
async function handshake(
  agentPort: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string; socket: Socket }> {
  const socket = connect({ host: '127.0.0.1', port: agentPort });
  await once(socket, 'connect');
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.write(`GET ${path} HTTP/1.1\r\nhost: agent\r\n${lines.join('')}\r\n`);
  let text = '';
  for (;;) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    text += chunk.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end === -1) continue;
    const status = Number(text.slice(9, 12));
    const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
    if (status === 101 || text.length >= end + 4 + length) {
      socket.pause();
      return { status, text, socket };
    }
  }
}

const upgrade = (token: string) => ({
  connection: 'upgrade',
  upgrade: AGENT_TUNNEL_PROTOCOL,
  'x-snapvm-agent-token': token,
});

describe('port tunnel', () => {
  let agent: TestAgent;
  let app: Server;
  let appPort: number;
  let accepted = 0;

  before(async () => {
    agent = await startTestAgent();
    // Stands in for a TCP service in the machine: greets, then echoes upper-cased.
    app = createServer((socket) => {
      accepted++;
      socket.write('hello\n');
      socket.on('data', (chunk) => socket.write(chunk.toString().toUpperCase()));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((resolve) => app.close(resolve));
    await agent.cleanup();
  });

  test('bytes pass both ways untouched once the agent answers 101', async () => {
    const port = agent.agent.port as number;
    const { status, text, socket } = await handshake(
      port,
      `/v1/tunnel/${appPort}`,
      upgrade(agent.token),
    );
    assert.equal(status, 101, text);
    assert.match(text, new RegExp(`upgrade: ${AGENT_TUNNEL_PROTOCOL}`, 'i'));
    const received: Buffer[] = [];
    const rest = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1');
    if (rest.length > 0) received.push(rest);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.resume();
    // What an HTTP client would send: the agent must not parse or rewrite it.
    socket.write('GET /x HTTP/1.1\r\nauthorization: Basic abc\r\n\r\n');
    const expected = 'hello\nGET /X HTTP/1.1\r\nAUTHORIZATION: BASIC ABC\r\n\r\n';
    const deadline = Date.now() + 5_000;
    while (Buffer.concat(received).toString() !== expected && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(Buffer.concat(received).toString(), expected);

    const busy = await agent.request('GET', '/v1/activity');
    assert.equal(
      busy.body.proxy.openConnections,
      1,
      'an open tunnel counts as a proxied connection',
    );
    socket.end();
    await once(socket, 'close');
    const deadline2 = Date.now() + 5_000;
    let open = 1;
    while (open !== 0 && Date.now() < deadline2) {
      open = (await agent.request('GET', '/v1/activity')).body.proxy.openConnections;
      if (open !== 0) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(open, 0);
  });

  test('the app closing its end closes the tunnel', async () => {
    const closer = createServer((socket) => socket.end('bye'));
    await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve));
    try {
      const closerPort = (closer.address() as AddressInfo).port;
      const { status, socket } = await handshake(
        agent.agent.port as number,
        `/v1/tunnel/${closerPort}`,
        upgrade(agent.token),
      );
      assert.equal(status, 101);
      socket.resume();
      await once(socket, 'close');
    } finally {
      await new Promise((resolve) => closer.close(resolve));
    }
  });

  test('a tunnel needs the agent token; without it the app is never reached', async () => {
    const before = accepted;
    for (const token of [undefined, 'wrong-token-wrong-token']) {
      const headers: Record<string, string> = upgrade(token ?? '');
      if (token === undefined) delete headers['x-snapvm-agent-token'];
      const { status, text, socket } = await handshake(
        agent.agent.port as number,
        `/v1/tunnel/${appPort}`,
        headers,
      );
      socket.destroy();
      assert.equal(status, 401);
      assert.match(text, /"code":"unauthorized"/);
    }
    assert.equal(accepted, before);
  });

  test('nothing listening on the port is a 502 naming the port', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { status, text, socket } = await handshake(
      agent.agent.port as number,
      `/v1/tunnel/${port}`,
      upgrade(agent.token),
    );
    socket.destroy();
    assert.equal(status, 502);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error.code, 'upstream_unreachable');
    assert.match(body.error.message, new RegExp(`port ${port}`));
    const activity = await agent.request('GET', '/v1/activity');
    assert.equal(activity.body.proxy.openConnections, 0);
  });

  test('a bad port or another upgrade is a 400 naming the field; plain HTTP gets 426', async () => {
    const port = agent.agent.port as number;
    const bad = await handshake(port, '/v1/tunnel/99999', upgrade(agent.token));
    bad.socket.destroy();
    assert.equal(bad.status, 400);
    assert.match(bad.text, /"field":"port"/);
    const websocket = await handshake(port, `/v1/tunnel/${appPort}`, {
      ...upgrade(agent.token),
      upgrade: 'websocket',
    });
    websocket.socket.destroy();
    assert.equal(websocket.status, 400);
    assert.match(websocket.text, /"field":"upgrade"/);
    const plain = await agent.request('GET', `/v1/tunnel/${appPort}`);
    assert.equal(plain.status, 426);
  });
});
