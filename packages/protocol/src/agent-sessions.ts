import { z } from 'zod';
import { agentCommandSchema, agentEnvSchema } from './agent-common.js';

/** Terminal dimensions are capped so a client cannot make the model allocate gigabytes. */
export const TERMINAL_MAX_COLS = 1000;
export const TERMINAL_MAX_ROWS = 500;

const colsSchema = z.number().int().min(1).max(TERMINAL_MAX_COLS);
const rowsSchema = z.number().int().min(1).max(TERMINAL_MAX_ROWS);
// Query strings carry numbers as text.
const colsQuerySchema = z.coerce.number().int().min(1).max(TERMINAL_MAX_COLS);
const rowsQuerySchema = z.coerce.number().int().min(1).max(TERMINAL_MAX_ROWS);

export const sessionIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'session ids are 1-64 letters, digits, _ or -');

export const createSessionSchema = z
  .object({
    /** Optional client-chosen id, so a client can attach without waiting for the reply. */
    id: sessionIdSchema.optional(),
    command: agentCommandSchema.optional(),
    cwd: z.string().min(1).max(4096).optional(),
    env: agentEnvSchema.optional(),
    cols: colsSchema.default(80),
    rows: rowsSchema.default(24),
    /** Ends the session after this long with no client attached. */
    idleTimeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .optional(),
  })
  .strict();
export type CreateSession = z.input<typeof createSessionSchema>;

export const sessionStateSchema = z.enum(['running', 'exited']);

export const sessionSchema = z.object({
  id: sessionIdSchema,
  command: z.array(z.string()),
  cwd: z.string(),
  pid: z.number().int(),
  state: sessionStateSchema,
  exitCode: z.number().int().nullable(),
  createdAt: z.string(),
  lastActivityAt: z.string(),
  attachedClients: z.number().int(),
  cols: z.number().int(),
  rows: z.number().int(),
  /** Bytes of output produced so far: the offset the next output byte will have. */
  offset: z.number().int(),
});
export type Session = z.infer<typeof sessionSchema>;

export const attachQuerySchema = z.object({
  /** Resume point: total output bytes this client already has. */
  offset: z.coerce.number().int().min(0).optional(),
  cols: colsQuerySchema.optional(),
  rows: rowsQuerySchema.optional(),
  /** Scrollback lines sent with a screen snapshot (capped by the session's scrollback). */
  history: z.coerce.number().int().min(0).max(100000).optional(),
});
export type AttachQuery = z.infer<typeof attachQuerySchema>;

export const sessionHistoryQuerySchema = z.object({
  /** Absolute line index to stop before (exclusive); default: the end of the buffer. */
  before: z.coerce.number().int().min(0).optional(),
  lines: z.coerce.number().int().min(1).max(10000).default(1000),
});

export const sessionHistorySchema = z.object({
  /** Lines in the normal buffer (scrollback + screen); indexes shift as old lines drop out. */
  total: z.number().int(),
  from: z.number().int(),
  lines: z.array(z.string()),
});
export type SessionHistory = z.infer<typeof sessionHistorySchema>;

/** Client → agent text frames. Binary frames are keystrokes. */
export const attachClientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('resize'), cols: colsSchema, rows: rowsSchema }),
]);
export type AttachClientMessage = z.infer<typeof attachClientMessageSchema>;

/** Agent → client text frames. Binary frames are terminal output. */
export const attachServerMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('attached'),
    session: sessionIdSchema,
    /** `resume`: the binary frames that follow continue the stream at `offset`.
     *  `snapshot`: the next `snapshotBytes` binary bytes redraw the screen (not part of the
     *  stream), then the stream continues at `offset`. */
    mode: z.enum(['resume', 'snapshot']),
    offset: z.number().int(),
    snapshotBytes: z.number().int(),
    cols: z.number().int(),
    rows: z.number().int(),
  }),
  z.object({ type: z.literal('size'), cols: z.number().int(), rows: z.number().int() }),
  z.object({ type: z.literal('exit'), code: z.number().int(), offset: z.number().int() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type AttachServerMessage = z.infer<typeof attachServerMessageSchema>;

/** WebSocket close codes the agent uses on terminal and exec sockets. */
export const AGENT_CLOSE_CODES = {
  /** The process ended. */
  exited: 1000,
  /** The client fell too far behind; it may reconnect with its offset. */
  slowConsumer: 4008,
  /** The session does not exist (any more). */
  notFound: 4004,
  /** A malformed control message. */
  badMessage: 4000,
  /** The agent is shutting down. */
  shuttingDown: 1001,
} as const;
