import createError from '@fastify/error';

/**
 * Typed errors: each has a stable `code` (the api.md error code) and an HTTP status. Services and
 * validators throw them; the one error handler (core/http.ts) turns them into the error body.
 */
const define = (code: string, status: number, message: string) => createError(code, message, status);

export const BadRequestError = define('BAD_REQUEST', 400, '%s');
export const UnauthorizedError = define('UNAUTHORIZED', 401, '%s');
export const TokenExpiredError = define('TOKEN_EXPIRED', 401, 'Token has expired');
export const TokenRevokedError = define('TOKEN_REVOKED', 401, 'Token has been revoked');
export const InvalidTokenError = define('INVALID_TOKEN', 401, '%s');
export const TokenReusedError = define(
  'TOKEN_REUSED',
  401,
  'Refresh token was already used; the session has been revoked',
);
export const InvalidCredentialsError = define('INVALID_CREDENTIALS', 401, 'Invalid email or password');
export const ForbiddenError = define('FORBIDDEN', 403, '%s');
export const NotFoundError = define('NOT_FOUND', 404, '%s');
export const ConflictError = define('CONFLICT', 409, '%s');
export const VersionConflictError = define(
  'VERSION_CONFLICT',
  409,
  'The resource was changed by someone else (expected version %s); reload and retry',
);
export const EmailTakenError = define('EMAIL_TAKEN', 409, 'Email is already registered');
export const TooManyAttemptsError = define('TOO_MANY_ATTEMPTS', 429, 'Too many failed attempts; retry in %s seconds');
export const ServiceUnavailableError = define('SERVICE_UNAVAILABLE', 503, '%s');

/** A thrown value that carries an api.md error code and a status. */
export interface CodedError extends Error {
  code: string;
  statusCode: number;
}

/** True when a database error (or the driver error drizzle wrapped) is a unique-index violation. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  type DbError = { code?: string; constraint?: string; constraint_name?: string; cause?: unknown };
  for (let e = error as DbError | undefined; e; e = e.cause as DbError | undefined) {
    if (e.code === '23505') return !constraint || (e.constraint_name ?? e.constraint) === constraint;
  }
  return false;
}

export const LockTimeoutError = define('LOCK_TIMEOUT', 409, 'Another request holds %s; retry shortly');
export const LockUnavailableError = define('LOCK_UNAVAILABLE', 503, 'The lock service is unavailable; retry shortly');
export const DatabaseUnavailableError = define('DATABASE_UNAVAILABLE', 503, 'The database is unavailable; retry shortly');

/**
 * 503 codes that say which dependency is down (`<DEPENDENCY>_UNAVAILABLE`, or the generic SERVICE_UNAVAILABLE):
 * the error handler shows their code and message (they hold no internals) and adds Retry-After. Any other 5xx
 * stays an opaque INTERNAL_ERROR.
 */
export const UNAVAILABLE_CODES: ReadonlySet<string> = new Set(['SERVICE_UNAVAILABLE', 'LOCK_UNAVAILABLE', 'DATABASE_UNAVAILABLE']);

/*
 * PostgreSQL failures that say nothing about the request and pass by themselves: the server is unreachable,
 * restarting, out of connections, ended our session (pg_terminate_backend, idle-in-transaction timeout), or did
 * not answer within the statement timeout. SQLSTATE classes 08 (connection exception), 53 (insufficient
 * resources), 57 (operator intervention: 57014 query_canceled, 57P01 admin_shutdown, ...), plus 55P03
 * (lock_not_available) and 25P03 (idle_in_transaction_session_timeout); postgres.js's own connection errors; the
 * socket errors of Node; and the client-side deadline of adapter/postgres.ts (DATABASE_TIMEOUT).
 */
const DB_STATE = /^(08|53|57)|^55P03$|^25P03$/;
const DB_CLIENT_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'DATABASE_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** True when an error (or a cause drizzle wrapped) is PostgreSQL being unavailable rather than a bug or bad input. */
export function isDatabaseUnavailable(error: unknown): boolean {
  type DbError = { code?: unknown; name?: unknown; cause?: unknown };
  for (let e = error as DbError | undefined, depth = 0; e && depth < 5; e = e.cause as DbError | undefined, depth += 1) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (e.name === 'PostgresError' && DB_STATE.test(code)) return true;
    if (DB_CLIENT_CODES.has(code)) return true;
  }
  return false;
}
export const FeatureDisabledError = define('FEATURE_DISABLED', 403, 'Feature %s is not enabled for you');

export const SkuTakenError = define('SKU_TAKEN', 409, 'Another product already has sku %s');
export const InsufficientStockError = define('INSUFFICIENT_STOCK', 409, 'Not enough stock for product %s');
export const UnknownProductError = define('UNKNOWN_PRODUCT', 422, 'Product %s does not exist');
export const InvalidTransitionError = define('INVALID_TRANSITION', 409, 'An order cannot go from %s to %s');
export const AmountMismatchError = define('AMOUNT_MISMATCH', 422, 'Payment of %s cents does not match the order total of %s cents');
