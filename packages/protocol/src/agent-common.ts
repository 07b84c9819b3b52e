import { z } from 'zod';

// Wire contract of the in-machine agent (docs/agent.md). The server builds requests with
// these schemas and the agent validates with the same ones, so the two cannot drift.

/** Version prefix of every agent endpoint. */
export const AGENT_API_PREFIX = '/v1';

/** Header that may carry the agent token instead of `Authorization`, so a proxied request
 * keeps the app's own `Authorization` header. */
export const AGENT_TOKEN_HEADER = 'x-snapvm-agent-token';

/** `Upgrade` protocol of `GET /v1/tunnel/:port`: after the 101 the connection is a plain
 * TCP connection to 127.0.0.1:<port> inside the machine, with no HTTP parsing in the agent. */
export const AGENT_TUNNEL_PROTOCOL = 'snapvm-tcp';

/** Path of the agent's raw TCP tunnel to a port inside the machine. */
export const agentTunnelPath = (port: number) => `/v1/tunnel/${port}`;

export const agentErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
  }),
});
export type AgentError = z.infer<typeof agentErrorSchema>;

/** Environment values handed to child processes. */
export const agentEnvSchema = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment names are letters, digits and _'),
  z.string().max(65536),
);

/** argv of a program: the first element is looked up in PATH when it has no slash. */
export const agentCommandSchema = z.array(z.string().max(65536)).min(1).max(4096);

export const agentHealthSchema = z.object({
  status: z.literal('ok'),
  version: z.string(),
  pid: z.number().int(),
  uptimeSeconds: z.number(),
});
export type AgentHealth = z.infer<typeof agentHealthSchema>;

export const agentActivitySchema = z.object({
  busy: z.boolean(),
  /** Human-readable reasons the machine is awake, empty when idle. */
  reasons: z.array(z.string()),
  sessions: z.object({
    running: z.number().int(),
    attachedClients: z.number().int(),
  }),
  execs: z.object({ running: z.number().int() }),
  proxy: z.object({ openConnections: z.number().int() }),
  services: z.object({ running: z.number().int() }),
  lastInputAt: z.string().nullable(),
  lastOutputAt: z.string().nullable(),
  lastActivityAt: z.string(),
});
export type AgentActivity = z.infer<typeof agentActivitySchema>;
