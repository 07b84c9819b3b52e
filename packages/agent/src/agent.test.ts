import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  agentActivitySchema,
  agentErrorSchema,
  agentHealthSchema,
  attachServerMessageSchema,
  execResultSchema,
  serviceSchema,
  sessionSchema,
} from '@snapvm/protocol';
import { attachClient, startTestAgent, type TestAgent } from './testing/agent-fixture.js';

describe('agent API', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(() => agent.cleanup());

  test('requests without the right token are refused', async () => {
    assert.equal((await agent.request('GET', '/v1/health', undefined, {})).status, 401);
    const wrong = await agent.request('GET', '/v1/health', undefined, {
      authorization: `Bearer ${agent.token}x`,
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'unauthorized');
    const ok = await agent.request('GET', '/v1/health');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'ok');
  });

  test('unknown routes are 404 and wrong methods 405', async () => {
    assert.equal((await agent.request('GET', '/v1/nothing')).status, 404);
    assert.equal((await agent.request('GET', '/v2/health')).status, 404);
    assert.equal((await agent.request('PATCH', '/v1/sessions')).status, 405);
    const badEscape = await agent.request('GET', '/v1/sessions/%E0%A4%A');
    assert.equal(badEscape.status, 400);
    assert.equal(badEscape.body.error.field, 'path');
  });

  test('an oversized body is refused with 413', async () => {
    const res = await agent.request('POST', '/v1/exec', 'x'.repeat(11 * 1024 * 1024));
    assert.equal(res.status, 413);
  });

  test('activity reports attached terminals and the time of the last input', async () => {
    const idle = await agent.request('GET', '/v1/activity');
    assert.equal(idle.body.busy, false);
    assert.deepEqual(idle.body.reasons, []);
    const created = await agent.request('POST', '/v1/sessions', {
      command: ['/bin/bash', '--norc', '--noprofile'],
    });
    const client = await attachClient(agent, created.body.id);
    client.type('echo hi\r');
    await client.waitForText('hi');
    const busy = await agent.request('GET', '/v1/activity');
    assert.equal(busy.body.busy, true);
    assert.equal(busy.body.sessions.attachedClients, 1);
    assert.match(busy.body.reasons[0], /terminal/);
    assert.ok(busy.body.lastInputAt);
    assert.ok(busy.body.lastOutputAt);
    await client.close();
    const after = await agent.request('GET', '/v1/activity');
    assert.equal(after.body.busy, false);
    assert.equal(after.body.sessions.running, 1);
  });

  test('responses and messages match the protocol schemas the server reads them with', async () => {
    agentHealthSchema.parse((await agent.request('GET', '/v1/health')).body);
    agentActivitySchema.parse((await agent.request('GET', '/v1/activity')).body);
    agentErrorSchema.parse((await agent.request('GET', '/v1/sessions/none')).body);
    const created = await agent.request('POST', '/v1/sessions', {
      command: ['/bin/sh', '-c', 'echo hi; exit 3'],
    });
    sessionSchema.parse(created.body);
    const client = await attachClient(agent, created.body.id, '?offset=0');
    await client.closed;
    for (const message of client.controls) attachServerMessageSchema.parse(message);
    assert.deepEqual(
      client.controls.map((m) => m.type),
      ['attached', 'exit'],
    );
    const exec = await agent.request('POST', '/v1/exec', { command: ['true'] });
    execResultSchema.parse(exec.body);
    const service = await agent.request('PUT', '/v1/services/tiny', {
      command: 'sleep',
      args: ['30'],
    });
    serviceSchema.parse(service.body);
    for (const item of (await agent.request('GET', '/v1/services')).body.items) {
      serviceSchema.parse(item);
    }
  });
});
