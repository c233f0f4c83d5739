/**
 * Token bucket: at most `ratePerSec` acquisitions per second on average, bursts up to `burst`. Callers await a slot;
 * waiters are served in FIFO order by one timer (no busy loop, no polling).
 *
 * The default burst is 1: requests go out evenly spaced, so no second ever holds more than the rate (plus one at its
 * edge). A NAC that enforces N requests in any second (the simulator's sliding window) answers a bucket that saved
 * up N tokens with 429s once those are spent on top of the steady rate: B3 measured 6 % of requests refused with a
 * burst of N, which cost it more than the smoothing does.
 */
export class TokenBucket {
  private tokens: number;
  private lastRefill: number;
  private readonly waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number = 1,
    private readonly now: () => number = () => performance.now()
  ) {
    if (!(ratePerSec > 0)) throw new RangeError('ratePerSec must be > 0');
    if (!(burst >= 1)) throw new RangeError('burst must be >= 1');
    this.tokens = burst;
    this.lastRefill = now();
  }

  /** Resolves when the caller may send one request. */
  acquire(): Promise<void> {
    this.refill();
    // Queue behind earlier waiters even if a token is free, so nobody starves.
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.scheduleDrain();
    });
  }

  /** Waiters still queued (for metrics and tests). */
  get pending(): number {
    return this.waiters.length;
  }

  private refill(): void {
    const t = this.now();
    const elapsedSec = Math.max(0, t - this.lastRefill) / 1000;
    this.tokens = Math.min(this.burst, this.tokens + elapsedSec * this.ratePerSec);
    this.lastRefill = t;
  }

  private scheduleDrain(): void {
    if (this.timer) return;
    const waitMs = Math.max(0, ((1 - this.tokens) / this.ratePerSec) * 1000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, Math.ceil(waitMs));
  }

  private drain(): void {
    this.refill();
    while (this.waiters.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.waiters.shift()!();
    }
    if (this.waiters.length > 0) this.scheduleDrain();
  }
}
