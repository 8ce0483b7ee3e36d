// An EventTarget whose events carry a `detail` and whose listeners receive just that.

export class Emitter extends EventTarget {
  /** @param {string} type @param {any} [detail] */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * @param {string} type @param {(detail: any) => void} listener
   * @param {AddEventListenerOptions} [options] e.g. `{signal}`: listen until it aborts
   */
  on(type, listener, options) {
    this.addEventListener(type, (event) => listener(/** @type {CustomEvent} */ (event).detail), options);
  }
}
