/** Timestamps and counters the activity endpoint reports; everyone that keeps the machine
 * busy updates it. */
export class ActivityTracker {
  lastInputAt: Date | null = null;
  lastActivityAt = new Date();
  /** Running execs, so shutdown can end them (they run in their own process groups). */
  readonly execs = new Set<{ kill(signal: NodeJS.Signals): void }>();
  proxyConnections = 0;

  get runningExecs(): number {
    return this.execs.size;
  }

  touch(): void {
    this.lastActivityAt = new Date();
  }

  touchInput(): void {
    this.lastInputAt = new Date();
    this.lastActivityAt = this.lastInputAt;
  }

  // Output arrives thousands of times a second: keep a number, not a Date per chunk.
  private outputAtMs = 0;
  touchOutput(): void {
    this.outputAtMs = Date.now();
  }

  get lastOutputAt(): Date | null {
    return this.outputAtMs ? new Date(this.outputAtMs) : null;
  }
}
