// Exponential backoff with full jitter: the wait before attempt n is uniform in
// [0, min(cap, base * 2^n)], so that clients cut off together do not come back together.

export class Backoff {
  constructor({ baseMs = 1000, capMs = 30000, random = Math.random } = {}) {
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.random = random;
    this.attempt = 0;
  }

  next() {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.floor(this.random() * ceiling);
  }

  reset() {
    this.attempt = 0;
  }
}
