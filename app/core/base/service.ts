import type { Executor } from '../database.js';
import type { ListOptions, Page } from './repository.js';

/** What every entity service offers its routes; entity services add their own operations. */
export interface EntityService<Dto, Create, Patch> {
  get(id: string): Promise<Dto>;
  list(options: ListOptions): Promise<Page<Dto>>;
  create(input: Create, tx?: Executor): Promise<Dto>;
  update(id: string, version: number, patch: Patch): Promise<Dto>;
  remove(id: string): Promise<void>;
}

/** Timestamps leave the service as ISO-8601 strings, the shape the response schemas declare. */
export const iso = (value: Date | null | undefined): string | null => (value ? value.toISOString() : null);
export const isoRequired = (value: Date): string => value.toISOString();

/** Escapes LIKE wildcards so `?q=` matches literally. */
export const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * What a write carries from what caused it. `correlationId` (the request id, or the consumed event's)
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
