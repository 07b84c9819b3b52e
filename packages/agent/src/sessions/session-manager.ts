import { randomUUID } from 'node:crypto';
import { createSessionSchema, type Session } from '@snapvm/protocol';
import type { ActivityTracker } from '../activity.js';
import { buildChildEnv } from '../child-env.js';
import { HttpError, notFound, parseOrThrow } from '../http/errors.js';
import { isDirectory, loginShell, resolveCommand } from '../process/resolve-command.js';
import { ScreenModelPool } from './screen-model.js';
import { type TerminalLimits, TerminalSession } from './terminal-session.js';

export interface SessionManagerOptions extends TerminalLimits {
  maxSessions: number;
  exitedRetentionMs: number;
  screenWorkers: number;
}

/** All terminal sessions of the machine. Sessions outlive their clients; exited ones stay
 * listable for `exitedRetentionMs`. */
export class SessionManager {
  private readonly sessions = new Map<string, TerminalSession>();
  private readonly pool: ScreenModelPool;
  private readonly forgetTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly options: SessionManagerOptions,
    private readonly activity: ActivityTracker,
  ) {
    this.pool = new ScreenModelPool(options.screenWorkers);
  }

  create(input: unknown): TerminalSession {
    const request = parseOrThrow(createSessionSchema, input);
    const id = request.id ?? randomUUID();
    if (this.sessions.has(id)) {
      throw new HttpError(409, 'session_exists', `a session with id ${id} exists`, 'id');
    }
    const running = [...this.sessions.values()].filter((s) => s.running).length;
    if (running >= this.options.maxSessions) {
      throw new HttpError(
        409,
        'too_many_sessions',
        `this machine allows at most ${this.options.maxSessions} sessions`,
      );
    }
    const env = buildChildEnv({
      TERM: 'xterm-256color',
      COLORTERM: 'truecolor',
      ...request.env,
    });
    const command = request.command ?? loginShell();
    const program = resolveCommand(command[0] as string, env.PATH);
    if (!program) {
      throw new HttpError(
        422,
        'command_not_found',
        `${command[0]} is not an executable`,
        'command',
      );
    }
    const cwd = request.cwd ?? env.HOME ?? '/';
    if (!isDirectory(cwd)) {
      throw new HttpError(422, 'cwd_not_found', `${cwd} is not a directory`, 'cwd');
    }
    const session = new TerminalSession(
      {
        id,
        command,
        cwd,
        env,
        cols: request.cols,
        rows: request.rows,
        idleTimeoutSeconds: request.idleTimeoutSeconds,
      },
      this.options,
      this.pool,
      this.activity,
    );
    this.sessions.set(id, session);
    void session.exited.then(() => {
      const timer = setTimeout(() => {
        this.forgetTimers.delete(timer);
        if (this.sessions.get(id) === session) this.forget(session);
      }, this.options.exitedRetentionMs);
      timer.unref();
      this.forgetTimers.add(timer);
    });
    return session;
  }

  private forget(session: TerminalSession): void {
    this.sessions.delete(session.id);
    session.dispose();
  }

  get(id: string): TerminalSession {
    const session = this.sessions.get(id);
    if (!session) throw notFound(`session ${id}`);
    return session;
  }

  list(): Session[] {
    return [...this.sessions.values()].map((s) => s.describe());
  }

  async end(id: string): Promise<void> {
    const session = this.get(id);
    await session.end();
    this.forget(session);
  }

  counts(): { running: number; attachedClients: number } {
    let running = 0;
    let attachedClients = 0;
    for (const session of this.sessions.values()) {
      if (session.running) running++;
      attachedClients += session.attachedClients;
    }
    return { running, attachedClients };
  }

  async closeAll(closeCode: number): Promise<void> {
    for (const timer of this.forgetTimers) clearTimeout(timer);
    await Promise.all([...this.sessions.values()].map((s) => s.end()));
    for (const session of this.sessions.values()) session.dispose(closeCode);
    this.sessions.clear();
    await this.pool.close();
  }
}
