import type { Executor } from '../database.js';

/** Timestamps leave the service as ISO-8601 strings, the shape the response schemas declare. */
export const isoRequired = (value: Date): string => value.toISOString();

/** Escapes LIKE wildcards so `?q=` matches literally. */
export const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * What a write carries from what caused it. `correlationId` (the request's correlation id, or the consumed event's)
 * goes into the events it emits. A consumer passes its own transaction `tx` (the write joins it as a
 * savepoint) and `afterCommit`, which collects the work that must wait for that outer commit (cache
 * invalidation, waking the outbox relay).
 */
export interface WriteContext {
  correlationId?: string | undefined;
  tx?: Executor | undefined;
  afterCommit?: ((work: () => Promise<unknown> | unknown) => void) | undefined;
}

/** Runs `work` now, or after the caller's transaction when the context says it has one. */
export async function afterCommit(context: WriteContext, work: () => Promise<unknown> | unknown): Promise<void> {
  if (context.afterCommit) context.afterCommit(work);
  else await work();
}
