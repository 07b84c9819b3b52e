/** Timestamps and counters the activity endpoint reports; everyone that keeps the machine
 * busy updates it. */
export class ActivityTracker {
  lastInputAt: Date | null = null;
  lastOutputAt: Date | null = null;
  lastActivityAt = new Date();
  runningExecs = 0;
  proxyConnections = 0;

  touch(): void {
    this.lastActivityAt = new Date();
  }

  touchInput(): void {
    this.lastInputAt = new Date();
    this.lastActivityAt = this.lastInputAt;
  }

  // Output can arrive thousands of times a second; one Date per call is cheap enough but
  // a shared number avoids allocating one per chunk.
  private outputAtMs = 0;
  touchOutput(): void {
    this.outputAtMs = Date.now();
  }

  get lastOutput(): Date | null {
    return this.outputAtMs ? new Date(this.outputAtMs) : this.lastOutputAt;
  }
}
