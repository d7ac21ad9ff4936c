// What commands may touch of the outside world; tests pass their own.

export interface Io {
  /** Writes to stdout (text as given: commands add their own newlines). */
  out(text: string): void;
  /** Writes to stderr. */
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Progress lines are redrawn in place on a terminal, printed one per change otherwise. */
  stderrIsTTY: boolean;
  /** Calls `handler` on SIGINT and SIGTERM until the returned function is called. */
  onSignal(handler: (signal: string) => void): () => void;
}

export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    stderrIsTTY: process.stderr.isTTY === true,
    onSignal(handler) {
      const signals = ["SIGINT", "SIGTERM"] as const;
      for (const s of signals) process.on(s, handler);
      return () => {
        for (const s of signals) process.off(s, handler);
      };
    },
  };
}
