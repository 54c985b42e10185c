// At most `size` pulls at once (pullConcurrency). An image takes a slot only when
// it is ready to pull — its credential resolved — so that images still waiting
// for AWS never hold back one that needs no credential.
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  /** Resolves with the slot's release once one is free; rejects if `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const next = this.waiting.shift();
        if (next) next();
        else this.free += 1;
      };
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        resolve(release);
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
      };
      if (this.free > 0) {
        this.free -= 1;
        return resolve(release);
      }
      this.waiting.push(grant);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
