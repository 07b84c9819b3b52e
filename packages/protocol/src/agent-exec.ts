import { z } from 'zod';
import { agentCommandSchema, agentEnvSchema } from './agent-common.js';

export const EXEC_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export const execRequestSchema = z
  .object({
    command: agentCommandSchema,
    cwd: z.string().min(1).max(4096).optional(),
    env: agentEnvSchema.optional(),
    /** Written to the process's stdin, which is then closed. */
    stdin: z
      .string()
      .max(8 * 1024 * 1024)
      .optional(),
    timeoutMs: z
      .number()
      .int()
      .min(1)
      .max(24 * 3600 * 1000)
      .optional(),
    /** Cap per stream; output beyond it is dropped and flagged as truncated. */
    maxOutputBytes: z
      .number()
      .int()
      .min(0)
      .max(EXEC_MAX_OUTPUT_BYTES)
      .default(1024 * 1024),
  })
  .strict();
export type ExecRequest = z.input<typeof execRequestSchema>;

export const execResultSchema = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  durationMs: z.number(),
});
export type ExecResult = z.infer<typeof execResultSchema>;

/** Streaming exec over WebSocket: the first client frame is this JSON (no `stdin`). */
export const execStreamStartSchema = execRequestSchema.omit({ stdin: true, maxOutputBytes: true });

/** First byte of every binary frame on the streaming exec socket. */
export const EXEC_STREAM = { stdin: 0, stdout: 1, stderr: 2 } as const;

export const execStreamClientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('eof') }),
  z.object({
    type: z.literal('signal'),
    signal: z.enum(['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGHUP']),
  }),
]);

export const execStreamServerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), pid: z.number().int() }),
  z.object({
    type: z.literal('exit'),
    code: z.number().int().nullable(),
    signal: z.string().nullable(),
    timedOut: z.boolean(),
  }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type ExecStreamServerMessage = z.infer<typeof execStreamServerMessageSchema>;
