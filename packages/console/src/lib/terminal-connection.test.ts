import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { type WebSocket as ServerSocket, WebSocketServer } from 'ws';
import { type ConnectionInfo, TerminalConnection } from './terminal-connection.js';

// A real WebSocket server speaking the agent's attach protocol (resume from ?offset= when the
// bytes are still buffered, otherwise a snapshot first), driven through Node's own WebSocket
// client, which is the same WHATWG API as the browser's (run with --experimental-websocket).

interface PeerSocket {
  socket: ServerSocket;
  url: URL;
}

class AttachPeer {
  readonly server: WebSocketServer;
  readonly sockets: PeerSocket[] = [];
  readonly received: Buffer[] = [];
  readonly controls: unknown[] = [];
  /** All output the session ever produced. */
  stream = Buffer.alloc(0);
  /** Offsets below this have left the buffer; attaching there gets a snapshot. */
  bufferStart = 0;
  snapshot = Buffer.from('\x1b[H\x1b[2JSCREEN');
  closeWith: number | null = null;
  /** Holds the attach answer back, as a gateway does while it wakes the machine. */
  attachDelayMs = 0;

  constructor() {
    this.server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this.server.on('connection', (socket, request) => {
      const url = new URL(request.url ?? '/', 'http://x');
      this.sockets.push({ socket, url });
      if (this.closeWith !== null) {
        socket.close(this.closeWith, 'refused');
        return;
      }
      socket.on('message', (data, isBinary) => {
        if (isBinary) this.received.push(Buffer.from(data as Buffer));
        else this.controls.push(JSON.parse(String(data)));
      });
      setTimeout(() => this.answerAttach(socket, url), this.attachDelayMs);
    });
  }

  private answerAttach(socket: ServerSocket, url: URL): void {
    if (socket.readyState !== socket.OPEN) return;
    {
      const asked = url.searchParams.get('offset');
      const offset = asked === null ? null : Number(asked);
      const live = this.stream.length;
      if (offset !== null && offset >= this.bufferStart && offset <= live) {
        socket.send(JSON.stringify({ type: 'attached', mode: 'resume', offset, snapshotBytes: 0 }));
        if (offset < live) socket.send(this.stream.subarray(offset));
      } else {
        socket.send(
          JSON.stringify({
            type: 'attached',
            mode: 'snapshot',
            offset: live,
            snapshotBytes: this.snapshot.length,
          }),
        );
        // Split across frames so the client must count snapshot bytes, not frames.
        socket.send(this.snapshot.subarray(0, 3));
        socket.send(this.snapshot.subarray(3));
      }
    }
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/attach`;
  }

  get latest(): ServerSocket {
    const last = this.sockets[this.sockets.length - 1];
    assert.ok(last, 'no client attached');
    return last.socket;
  }

  output(text: string): void {
    const bytes = Buffer.from(text);
    this.stream = Buffer.concat([this.stream, bytes]);
    for (const { socket } of this.sockets)
      if (socket.readyState === socket.OPEN) socket.send(bytes);
  }

  close(): Promise<void> {
    for (const { socket } of this.sockets) socket.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// Disposed after the tests even when one fails, so no reconnect loop outlives the file.
const connections: TerminalConnection[] = [];

function connect(peer: AttachPeer, wakingAfterMs?: number) {
  const statuses: ConnectionInfo[] = [];
  const screen: string[] = [];
  let resets = 0;
  const decoder = new TextDecoder();
  const connection = new TerminalConnection({
    url: (query) => {
      const url = new URL(peer.url);
      for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
      return url.toString();
    },
    onOutput: (bytes) => screen.push(decoder.decode(bytes)),
    onReset: () => {
      resets += 1;
      screen.length = 0;
    },
    onStatus: (info) => statuses.push(info),
    backoff: { initialMs: 20, maxMs: 80, factor: 2, jitter: 0 },
    ...(wakingAfterMs === undefined ? {} : { wakingAfterMs }),
  });
  connection.connect();
  connections.push(connection);
  return {
    connection,
    statuses,
    text: () => screen.join(''),
    resets: () => resets,
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const peers: AttachPeer[] = [];
async function newPeer(): Promise<AttachPeer> {
  const peer = new AttachPeer();
  peers.push(peer);
  await new Promise((resolve) => peer.server.once('listening', resolve));
  return peer;
}
after(async () => {
  for (const connection of connections) connection.dispose();
  await Promise.all(peers.map((peer) => peer.close()));
});

test('a first attach draws the snapshot and counts only stream bytes as the offset', async () => {
  const peer = await newPeer();
  peer.output('before ');
  const client = connect(peer);
  await until(() => client.connection.status.status === 'connected', 'attach');
  await until(() => client.text() === '\x1b[H\x1b[2JSCREEN', 'snapshot');
  assert.equal(client.resets(), 1);
  assert.equal(client.connection.receivedOffset, 7);
  assert.equal(peer.sockets[0]?.url.searchParams.has('offset'), false);
  peer.output('live');
  await until(() => client.connection.receivedOffset === 11, 'live output');
  client.connection.dispose();
});

test('after a drop the terminal reconnects from its offset and loses or repeats nothing', async () => {
  const peer = await newPeer();
  const client = connect(peer);
  await until(() => client.connection.status.status === 'connected', 'attach');
  peer.output('one ');
  await until(() => client.text().endsWith('one '), 'first output');
  const before = client.text();

  peer.latest.terminate();
  peer.output('two ');
  await until(() => client.statuses.some((s) => s.status === 'reconnecting'), 'reconnecting');
  const reconnecting = client.statuses.find((s) => s.status === 'reconnecting');
  assert.equal(reconnecting?.retryInMs, 20);
  await until(
    () => peer.sockets.length === 2 && client.connection.status.status === 'connected',
    'reattach',
  );
  assert.equal(peer.sockets[1]?.url.searchParams.get('offset'), '4');
  peer.output('three');
  await until(() => client.text().endsWith('three'), 'output after reattach');
  assert.equal(client.text(), `${before}two three`);
  assert.equal(client.resets(), 1, 'a resume must not clear the screen');
  client.connection.dispose();
});

test('when the offset has left the buffer, the screen is reset and redrawn from a snapshot', async () => {
  const peer = await newPeer();
  const client = connect(peer);
  await until(() => client.connection.status.status === 'connected', 'attach');
  peer.output('abc');
  await until(() => client.connection.receivedOffset === 3, 'output');
  peer.latest.terminate();
  peer.output('defgh');
  peer.bufferStart = 5;
  peer.snapshot = Buffer.from('NEW');
  await until(() => client.resets() === 2 && client.text() === 'NEW', 'snapshot redraw');
  assert.equal(client.connection.receivedOffset, 8);
  client.connection.dispose();
});

test('keystrokes go out as binary frames and the size as a resize message', async () => {
  const peer = await newPeer();
  const client = connect(peer);
  assert.equal(client.connection.sendInput('lost'), false, 'input before attach is refused');
  await until(() => client.connection.status.status === 'connected', 'attach');
  client.connection.resize(120, 40);
  assert.equal(client.connection.sendInput('echo hi\r'), true);
  await until(() => peer.received.length > 0 && peer.controls.length > 0, 'input');
  assert.equal(Buffer.concat(peer.received).toString(), 'echo hi\r');
  assert.deepEqual(peer.controls, [{ type: 'resize', cols: 120, rows: 40 }]);
  peer.latest.terminate();
  await until(() => peer.sockets.length === 2, 'reattach');
  assert.equal(peer.sockets[1]?.url.searchParams.get('cols'), '120');
  assert.equal(peer.sockets[1]?.url.searchParams.get('rows'), '40');
  client.connection.dispose();
});

test('an ended process stops reconnecting and reports its exit code', async () => {
  const peer = await newPeer();
  const client = connect(peer);
  await until(() => client.connection.status.status === 'connected', 'attach');
  peer.latest.send(JSON.stringify({ type: 'exit', code: 3, offset: 0 }));
  peer.latest.close(1000);
  await until(() => client.connection.status.status === 'exited', 'exit');
  assert.equal(client.connection.status.exitCode, 3);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(peer.sockets.length, 1);
});

test('a session that no longer exists is reported once, without retrying', async () => {
  const peer = await newPeer();
  peer.closeWith = 4004;
  const client = connect(peer);
  await until(() => client.connection.status.status === 'closed', 'closed');
  assert.match(client.connection.status.message ?? '', /no longer exists/);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(peer.sockets.length, 1);
});

test('a server that is down is retried with growing delays until it answers', async () => {
  const peer = await newPeer();
  peer.closeWith = 1011;
  const client = connect(peer);
  await until(
    () => client.statuses.filter((s) => s.status === 'reconnecting' && s.retryInMs).length >= 3,
    'three retries',
  );
  const delays = client.statuses
    .filter((s) => s.status === 'reconnecting' && s.retryInMs)
    .map((s) => s.retryInMs);
  assert.deepEqual(delays.slice(0, 3), [20, 40, 80]);
  peer.closeWith = null;
  await until(() => client.connection.status.status === 'connected', 'recovery');
  assert.equal(client.connection.status.attempt, 0);
  client.connection.dispose();
});

test('a slow attach is shown as the machine waking, then as connected', async () => {
  const peer = await newPeer();
  peer.attachDelayMs = 150;
  const client = connect(peer, 30);
  await until(() => client.connection.status.status === 'waking', 'waking');
  await until(() => client.connection.status.status === 'connected', 'attach after waking');
  assert.deepEqual(
    [...new Set(client.statuses.map((s) => s.status))],
    ['connecting', 'waking', 'connected'],
  );
  client.connection.dispose();
});
