/** Steady load for fault tests: a few loops sending requests back to back until stopped, counting the outcomes. */

export interface Outcome {
  status: number;
  /** Set when the request did not get an answer at all (connection reset, refused...). */
  error?: string;
  ms: number;
}

export interface Load {
  /** Every outcome so far, in completion order. */
  outcomes: Outcome[];
  /** How many answers had each status so far. */
  count(status: number): number;
  /** Stops the loops and waits for the requests in flight; returns every outcome. */
  stop(): Promise<Outcome[]>;
}

/** Runs `concurrency` loops of `send` (which answers with a status) until stop(). */
export function startLoad(send: (n: number) => Promise<number>, concurrency: number): Load {
  const outcomes: Outcome[] = [];
  let running = true;
  let n = 0;
  const loop = async () => {
    while (running) {
      const started = performance.now();
      try {
        const status = await send(n++);
        outcomes.push({ status, ms: performance.now() - started });
      } catch (error) {
        outcomes.push({ status: 0, error: (error as Error).message, ms: performance.now() - started });
      }
      // Yield so that a loop of instant answers cannot starve the rest of the test.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    outcomes,
    count: (status) => outcomes.filter((o) => o.status === status).length,
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** `{ 200: 812, 503: 4 }`: outcomes by status, for assertion messages. */
export function tally(outcomes: Outcome[]): Record<string, number> {
  const byStatus: Record<string, number> = {};
  for (const o of outcomes) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  return byStatus;
}
