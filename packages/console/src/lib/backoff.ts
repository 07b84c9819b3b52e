// Exponential backoff with jitter, shared by the terminal's reconnects and state polling, so a
// server that comes back is not hit by every browser at the same instant.

export interface BackoffOptions {
  /** First delay. */
  initialMs: number;
  /** Cap on any delay. */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /** 0..1: how much of each delay may be randomly removed. */
  jitter: number;
}

export const RECONNECT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 15_000,
  factor: 2,
  jitter: 0.3,
};

/** The delay before retry number `attempt` (0-based); `random` is injectable for tests. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.floor(attempt));
  // Cap the exponent too: factor ** 1000 is Infinity, and Infinity * 0 would be NaN below.
  const raw = Math.min(options.maxMs, options.initialMs * options.factor ** Math.min(exponent, 64));
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.round(raw * (1 - jitter * random()));
}

/** Counts consecutive failures and hands out the next delay; reset() after a success. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const delay = backoffDelay(this.attempt, this.options, this.random);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}

export interface PollState {
  /** The watched object is changing (e.g. a machine is `starting`): poll fast. */
  transitional: boolean;
  /** Consecutive failed polls. */
  failures: number;
  /** The page is in a background tab. */
  hidden: boolean;
}

const POLL_FAST_MS = 1_000;
const POLL_STEADY_MS = 5_000;
const POLL_HIDDEN_MS = 30_000;
const POLL_ERROR: BackoffOptions = { initialMs: 2_000, maxMs: 60_000, factor: 2, jitter: 0.2 };

/** When to poll next: fast while something changes, slower when steady, backing off on errors. */
export function nextPollDelay(state: PollState, random: () => number = Math.random): number {
  if (state.failures > 0) return backoffDelay(state.failures - 1, POLL_ERROR, random);
  if (state.hidden) return POLL_HIDDEN_MS;
  return state.transitional ? POLL_FAST_MS : POLL_STEADY_MS;
}
