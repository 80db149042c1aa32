/**
 * Business rules beyond the shape a route schema checks (uniqueness, permissions, state
 * transitions). Validators throw typed errors from ./errors.ts; services call them before writing.
 */
export interface Actor {
  id: string;
  role: 'user' | 'admin';
}

export const isAdmin = (actor: Actor) => actor.role === 'admin';

/** Self-or-admin access. Others are told the resource does not exist, so ids cannot be probed. */
export function canSee(actor: Actor, ownerId: string): boolean {
  return isAdmin(actor) || actor.id === ownerId;
}
