import { STATUS_CODES } from 'node:http';
import type { LightMyRequestResponse } from 'fastify';
import type { Test } from 'tap';

/** Assertions on HTTP responses as api.md describes them, shared by the endpoint and core HTTP tests. */

/** The api.md error body. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
  requestId: string;
  details?: { field: string; rule: string; message: string }[];
}

/** A page of a list endpoint as api.md describes it. */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** An api.md timestamp: ISO 8601 in UTC. */
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/**
 * Asserts the api.md error shape: the status, a JSON body of exactly statusCode/code/error/message/requestId
 * (+ details for validation errors), statusCode equal to the HTTP status, an UPPER_SNAKE code (and `code` when
 * given), the HTTP reason phrase, a non-empty message, and requestId equal to the x-request-id header.
 */
export function expectError(t: Test, response: LightMyRequestResponse, status: number, code?: string): ErrorBody {
  t.equal(response.statusCode, status, `status ${status} (body: ${response.body})`);
  t.match(response.headers['content-type'], /^application\/json/, 'error body is JSON');
  const body = response.json() as ErrorBody;
  const keys = Object.keys(body).sort();
  const expected = ['code', 'error', 'message', 'requestId', 'statusCode'];
  t.same(keys, body.details === undefined ? expected : [...expected, 'details'].sort(), 'exactly the api.md error fields');
  t.equal(body.statusCode, status, 'statusCode in the body equals the HTTP status');
  t.match(body.code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, 'code is UPPER_SNAKE');
  if (code) t.equal(body.code, code, `code ${code}`);
  t.equal(body.error, STATUS_CODES[status], 'error is the HTTP reason phrase');
  t.type(body.message, 'string');
  t.ok(body.message.length > 0, 'message is not empty');
  t.type(body.requestId, 'string');
  t.ok(body.requestId.length > 0, 'requestId is not empty');
  t.equal(body.requestId, response.headers['x-request-id'], 'requestId equals the x-request-id header');
  return body;
}

/**
 * Asserts a 400 VALIDATION_ERROR (in the shape of `expectError`) whose details are present and name `field`
 * (the whole field path or its last segment), each such detail naming its rule.
 */
export function expectValidation(t: Test, response: LightMyRequestResponse, field: string): ErrorBody {
  const body = expectError(t, response, 400, 'VALIDATION_ERROR');
  t.ok(Array.isArray(body.details) && body.details.length > 0, 'details are present');
  const named = (body.details ?? []).filter((d) => d.field === field || d.field.endsWith(`.${field}`));
  t.ok(named.length > 0, `details name the field '${field}' (got ${JSON.stringify(body.details)})`);
  for (const d of named) {
    t.type(d.rule, 'string');
    t.ok(d.rule.length > 0, 'the detail names the rule');
  }
  return body;
}
