import { STATUS_CODES } from 'node:http';

/**
 * The api.md error-shape rules of expectError (tests/helpers/http.ts) as a pure check, for tests that look at
 * thousands of answers: the problems of one answer, empty when it is a well-formed error.
 */
export interface AnswerLike {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

const FIELDS = ['code', 'error', 'message', 'requestId', 'statusCode'];
const CODE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;
/** Things a 5xx must never show: stack frames, SQL, driver and network details. */
const INTERNALS = new RegExp(
  [String.raw`\n\s+at `, String.raw`\bselect\b`, String.raw`\binsert\b`, String.raw`\bupdate\b.*\bset\b`, 'postgres', 'drizzle', 'ioredis',
    'ECONN', String.raw`127\.0\.0\.1`, 'node_modules', String.raw`\.ts:\d+`].join('|'),
  'i',
);

export function errorShapeProblems(answer: AnswerLike): string[] {
  const problems: string[] = [];
  const type = String(answer.headers['content-type'] ?? '');
  if (!type.startsWith('application/json')) problems.push(`content-type ${type || '(none)'}`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(answer.body) as Record<string, unknown>;
  } catch {
    return [...problems, `body is not JSON: ${answer.body.slice(0, 200)}`];
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return [...problems, 'body is not an object'];
  const keys = Object.keys(body).sort();
  const expected = body.details === undefined ? FIELDS : [...FIELDS, 'details'].sort();
  if (keys.join() !== expected.join()) problems.push(`fields ${keys.join(',')}`);
  if (body.statusCode !== answer.statusCode) problems.push(`statusCode ${String(body.statusCode)} != ${answer.statusCode}`);
  if (typeof body.code !== 'string' || !CODE.test(body.code)) problems.push(`code ${String(body.code)}`);
  if (body.error !== STATUS_CODES[answer.statusCode]) problems.push(`error ${String(body.error)}`);
  if (typeof body.message !== 'string' || body.message.length === 0) problems.push('empty message');
  if (typeof body.requestId !== 'string' || body.requestId.length === 0) problems.push('no requestId');
  else if (body.requestId !== answer.headers['x-request-id']) problems.push('requestId differs from x-request-id');
  if (body.details !== undefined) {
    const ok = Array.isArray(body.details) && body.details.every((d: { field?: unknown; rule?: unknown; message?: unknown }) =>
      typeof d.field === 'string' && typeof d.rule === 'string' && typeof d.message === 'string');
    if (!ok) problems.push('details are not [{ field, rule, message }]');
  }
  if (answer.statusCode >= 500 && INTERNALS.test(String(body.message))) problems.push(`5xx message shows internals: ${String(body.message)}`);
  return problems;
}
