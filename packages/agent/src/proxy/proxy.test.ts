import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { startTestAgent, type TestAgent } from '../testing/agent-fixture.js';

describe('port proxy', () => {
  let agent: TestAgent;
  let app: Server;
  let appPort: number;
  let wss: WebSocketServer;
  let lastHeaders: IncomingHttpHeaders = {};

  before(async () => {
    agent = await startTestAgent();
    // Stands in for an app inside the machine: echoes the request back.
    app = createServer((req, res) => {
      lastHeaders = req.headers;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('x-app', 'yes');
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      });
    });
    wss = new WebSocketServer({ server: app });
    wss.on('connection', (ws, req) => {
      ws.on('message', (data, isBinary) =>
        ws.send(isBinary ? data : `echo:${data}`, { binary: isBinary }),
      );
      ws.send(`hello ${req.url}`);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as AddressInfo).port;
  });
  after(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => app.close(resolve));
    await agent.cleanup();
  });

  test('HTTP requests reach the app with path, query and body, without the agent token', async () => {
    const res = await fetch(`${agent.base}/v1/proxy/${appPort}/api/items?x=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.token}`, 'content-type': 'text/plain' },
      body: 'payload',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-app'), 'yes');
    assert.deepEqual(await res.json(), { method: 'POST', url: '/api/items?x=1', body: 'payload' });
    assert.equal(lastHeaders.authorization, undefined);
  });

  test("with the token in its own header, the app's Authorization header passes through", async () => {
    const res = await fetch(`${agent.base}/v1/proxy/${appPort}/`, {
      headers: { 'x-snapvm-agent-token': agent.token, authorization: 'Basic dXNlcjpwYXNz' },
    });
    assert.equal(res.status, 200);
    assert.equal(lastHeaders.authorization, 'Basic dXNlcjpwYXNz');
    assert.equal(lastHeaders['x-snapvm-agent-token'], undefined);
  });

  test('a large upload streams through', async () => {
    const body = Buffer.alloc(5_000_000, 'z');
    const res = await fetch(`${agent.base}/v1/proxy/${appPort}/upload`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${agent.token}` },
      body,
    });
    const echoed = (await res.json()) as { body: string };
    assert.equal(echoed.body.length, body.length);
  });

  test('a port with nothing listening gives a clear 502', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const res = await agent.request('GET', `/v1/proxy/${port}/`);
    assert.equal(res.status, 502);
    assert.equal(res.body.error.code, 'upstream_unreachable');
    const bad = await agent.request('GET', '/v1/proxy/99999/');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'port');
  });

  test('WebSocket connections are relayed both ways', async () => {
    const ws = new WebSocket(
      `ws://127.0.0.1:${agent.agent.port}/v1/proxy/${appPort}/socket?room=1`,
      {
        headers: { authorization: `Bearer ${agent.token}` },
      },
    );
    const messages: string[] = [];
    const got = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (messages.length >= n ? resolve() : ws.once('message', check));
        ws.on('message', (data) => messages.push(String(data)));
        check();
      });
    const first = got(1);
    await new Promise((resolve) => ws.once('open', resolve));
    await first;
    assert.equal(messages[0], 'hello /socket?room=1');
    const activity = await agent.request('GET', '/v1/activity');
    assert.equal(activity.body.proxy.openConnections, 1);
    assert.equal(activity.body.busy, true);
    ws.send('ping');
    await new Promise<void>((resolve) => {
      const check = () => (messages.includes('echo:ping') ? resolve() : setTimeout(check, 10));
      check();
    });
    ws.close();
    await new Promise((resolve) => ws.once('close', resolve));
  });

  test('a WebSocket to a closed port is refused with 502', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${agent.agent.port}/v1/proxy/1/`, {
      headers: { authorization: `Bearer ${agent.token}` },
    });
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(-1));
    });
    assert.equal(status, 502);
  });
});
