// POST .../exec: wake the machine, run the command through its agent, map agent errors onto
// the API's (the caller's input problems stay 4xx naming the field; an unreachable agent
// is a 503 like any machine that cannot be woken).
import type { ExecRequest, ExecResult } from '@snapvm/protocol';
import {
  AgentClient,
  AgentRequestError,
  AgentUnreachableError,
} from '../agent-client/agent-client.js';
import { ApiError, UnprocessableError } from '../errors.js';
import type { MachineLifecycle } from '../lifecycle/machine-lifecycle.js';
import { MachineUnavailableError } from './machine-waker.js';

export async function execInMachine(
  lifecycle: MachineLifecycle | null,
  machine: { id: string },
  actorId: string,
  body: ExecRequest,
  signal: AbortSignal,
): Promise<ExecResult> {
  if (!lifecycle)
    throw new MachineUnavailableError('This server does not run machines (SNAPVM_LIFECYCLE=off).');
  const endpoint = await lifecycle.waker.wake(machine, { actorId, signal });
  try {
    return await new AgentClient(endpoint).exec(body, { signal });
  } catch (err) {
    if (err instanceof AgentRequestError) {
      // The agent names fields relative to the body it was sent, which is the caller's body.
      if (err.status === 400) throw new ApiError(400, 'invalid_input', `body.${err.message}`);
      if (err.status === 422) throw new UnprocessableError(err.message, err.code);
      if (err.status < 500) throw new ApiError(err.status, err.code, err.message);
      throw new ApiError(502, 'agent_error', `The machine's agent failed: ${err.message}`);
    }
    if (err instanceof AgentUnreachableError) {
      // It was started a moment ago; if it died since, the reconciler should look now rather
      // than at its next sweep.
      lifecycle.notify(machine.id);
      throw new MachineUnavailableError(`The machine's agent did not answer (${err.message}).`);
    }
    throw err;
  } finally {
    // The exec itself kept the machine busy (the agent counts it); its end is activity too.
    lifecycle.idle.touch(machine.id);
  }
}
