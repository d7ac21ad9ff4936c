// A handlers module for `daa agent --handlers agent/examples/handlers.mjs --pool demo`: its default export maps
// task types to async functions (payload, context) => result.
export default {
  /** Echoes its payload: `daa submit demo.echo --payload '{"hello":"world"}' --wait`. */
  "demo.echo": async (payload, { attempt }) => ({ payload, attempt }),

  /** Counts the words of `payload.text`; a missing text cannot be fixed by retrying, so it is not retried. */
  "demo.words": async (payload) => {
    if (typeof payload?.text !== "string") throw Object.assign(new Error("payload.text must be a string"), { retryable: false });
    return { words: payload.text.split(/\s+/).filter(Boolean).length };
  },

  /** Waits `payload.ms` (default 1000), stopping early when the task times out or its lease is lost. */
  "demo.sleep": (payload, { signal }) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ slept: payload?.ms ?? 1000 }), payload?.ms ?? 1000);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    }),
};
