// Named timers, so an owner can restart, stop or drop them all at once (a role's ring and
// give-up timers, a connection's ICE restarts).

export class Timers {
  constructor() {
    /** @type {Map<string, ReturnType<typeof setTimeout>>} */
    this.running = new Map();
  }

  /**
   * Run `action` after `ms`, replacing the timer of that name.
   * @param {string} name @param {() => void} action @param {number} ms
   */
  schedule(name, action, ms) {
    this.clear(name);
    this.running.set(
      name,
      setTimeout(() => {
        this.running.delete(name);
        action();
      }, ms),
    );
  }

  /**
   * Like `schedule`, unless one of that name is running already (it keeps its time).
   * @param {string} name @param {() => void} action @param {number} ms
   */
  start(name, action, ms) {
    if (!this.running.has(name)) this.schedule(name, action, ms);
  }

  /** @param {string[]} names */
  clear(...names) {
    for (const name of names) {
      clearTimeout(this.running.get(name));
      this.running.delete(name);
    }
  }

  clearAll() {
    this.clear(...this.running.keys());
  }
}
