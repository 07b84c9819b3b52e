import { RateLimitedError } from '../errors.js';

export interface LoginLimits {
  /** Failed attempts allowed per account in one window. */
  perAccount: number;
  /** Attempts (failed or not) allowed per client IP in one window. */
  perIp: number;
  windowSeconds: number;
}

interface Window {
  count: number;
  resetAt: number;
}

/**
 * Fixed-window counters kept in this process's memory. With several replicas each enforces
 * its own limit, which still bounds guessing to (replicas × limit) per window.
 */
export class LoginLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limits: LoginLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws a 429 when either the IP or the account has used up its window. */
  checkAttempt(ip: string, email: string): void {
    const ipWindow = this.bump(`ip:${ip}`);
    if (ipWindow.count > this.limits.perIp) throw this.limited(ipWindow);
    const account = this.windows.get(`account:${email}`);
    if (account && account.resetAt > this.now() && account.count >= this.limits.perAccount)
      throw this.limited(account);
  }

  recordFailure(email: string): void {
    this.bump(`account:${email}`);
  }

  recordSuccess(email: string): void {
    this.windows.delete(`account:${email}`);
  }

  private bump(key: string): Window {
    const now = this.now();
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      if (this.windows.size > 50_000) this.sweep(now);
      window = { count: 0, resetAt: now + this.limits.windowSeconds * 1000 };
      this.windows.set(key, window);
    }
    window.count++;
    return window;
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
  }

  private limited(window: Window): RateLimitedError {
    return new RateLimitedError(Math.max(1, Math.ceil((window.resetAt - this.now()) / 1000)));
  }
}
