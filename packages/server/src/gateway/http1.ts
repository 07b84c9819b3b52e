// The HTTP/1.1 framing the machine-URL relay (app-relay.ts) needs: request and response heads
// split into lines, and where a body ends. Deliberately a strict subset of the syntax: a
// request head outside it is not rejected here but handed to Node's own parser (llhttp), which
// answers it properly; a response outside it ends the connection. Each relayed client
// connection has its own upstream connection, so a framing disagreement with the app could
// only confuse the connection of whoever sent the odd bytes, never another user's.

import { METHODS } from 'node:http';

/** Header names are RFC 9110 tokens. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible ASCII, obs-text, spaces and tabs; no CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Origin-form targets only (`/path?query`), visible ASCII. */
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;
const REQUEST_LINE = /^([A-Z]{1,20}) (\S+) HTTP\/1\.1$/;
/** The methods llhttp knows; it refuses any other name. */
const KNOWN_METHODS = new Set(METHODS);
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const DECIMAL = /^\d{1,15}$/;
/** llhttp takes trailing spaces after a Content-Length or Transfer-Encoding value, not tabs. */
const TRAILING_TAB = /\t *$/;
/** RFC 9112 §7.1.1 chunk extensions, without the BWS llhttp refuses: `;name` or `;name=value`. */
const CHUNK_SIZE_LINE =
  /^([0-9A-Fa-f]{1,8})(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*$/;
const TRAILER_FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t\x20-\x7e\x80-\xff]*$/;

export const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/** The end of the head in `buffer` (the index after its blank line), or -1. */
export function headEnd(buffer: Buffer): number {
  const at = buffer.indexOf(HEAD_END);
  return at < 0 ? -1 : at + 4;
}

/** A body's extent: none, so many bytes, chunked, or until the connection closes. */
export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; bytes: number }
  | { kind: 'chunked' };

export interface RequestHead {
  method: string;
  target: string;
  /** Flat [name, value, …] as sent (values trimmed). */
  headers: string[];
  host: string;
  body: BodyFraming;
  /** Headers the request's own Connection field names, lowercased (RFC 9110 §7.6.1). */
  connection: string[];
  /** The client asked to close after this request. */
  close: boolean;
}

/**
 * A request head (with or without its blank line) in the relay's subset: HTTP/1.1, an
 * origin-form target, one Host, at most one Content-Length or `Transfer-Encoding: chunked`
 * (never both), no Upgrade or Expect, no obsolete line folding. Null for anything else.
 */
export function parseRequestHead(head: string): RequestHead | null {
  const lines = head.split('\r\n');
  while (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const start = REQUEST_LINE.exec(lines[0] ?? '');
  if (!start) return null;
  const [, method, target] = start as unknown as [string, string, string];
  if (method === 'CONNECT' || !KNOWN_METHODS.has(method) || !ORIGIN_FORM.test(target)) return null;
  const fields = parseFields(lines);
  if (!fields) return null;
  const { headers, host, contentLength, transferEncoding, connection, hostCount } = fields;
  if (hostCount !== 1 || host === null || fields.upgradeOrExpect) return null;
  let body: BodyFraming = { kind: 'none' };
  if (transferEncoding !== null) {
    if (contentLength !== null || transferEncoding.toLowerCase() !== 'chunked') return null;
    body = { kind: 'chunked' };
  } else if (contentLength !== null) {
    const bytes = Number(contentLength);
    if (bytes > 0) body = { kind: 'length', bytes };
  }
  return {
    method,
    target,
    headers,
    host,
    body,
    connection,
    close: connection.includes('close'),
  };
}

export interface ResponseHead {
  status: number;
  reason: string;
  headers: string[];
  /** The body's extent; `close` means until the app closes the connection. */
  body: BodyFraming | { kind: 'close' };
  connection: string[];
  /** The app will close the connection after this response. */
  close: boolean;
}

/** A response head, framed for a request of `method`; null when it is malformed. */
export function parseResponseHead(head: string, method: string): ResponseHead | null {
  const lines = head.split('\r\n');
  while (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const start = STATUS_LINE.exec(lines[0] ?? '');
  if (!start) return null;
  const http10 = start[1] === '0';
  const status = Number(start[2]);
  const fields = parseFields(lines);
  if (!fields) return null;
  const { headers, contentLength, transferEncoding, connection } = fields;
  const close = connection.includes('close') || (http10 && !connection.includes('keep-alive'));
  let body: ResponseHead['body'];
  // RFC 9112 §6.3: these never have a body, whatever the fields say.
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304)
    body = { kind: 'none' };
  else if (transferEncoding !== null)
    body = /(?:^|,)[ \t]*chunked[ \t]*$/i.test(transferEncoding)
      ? { kind: 'chunked' }
      : { kind: 'close' };
  else if (contentLength !== null) {
    const bytes = Number(contentLength);
    body = bytes > 0 ? { kind: 'length', bytes } : { kind: 'none' };
  } else body = { kind: 'close' };
  return { status, reason: start[3] ?? '', headers, body, connection, close };
}

interface Fields {
  headers: string[];
  host: string | null;
  hostCount: number;
  contentLength: string | null;
  transferEncoding: string | null;
  connection: string[];
  upgradeOrExpect: boolean;
}

function parseFields(lines: string[]): Fields | null {
  const out: Fields = {
    headers: [],
    host: null,
    hostCount: 0,
    contentLength: null,
    transferEncoding: null,
    connection: [],
    upgradeOrExpect: false,
  };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    const raw = line.slice(colon + 1);
    const value = trimOws(raw);
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return null;
    switch (name.toLowerCase()) {
      case 'host':
        out.host = value;
        out.hostCount++;
        break;
      case 'content-length':
        // Repeated lengths are a classic smuggling vector: not in the subset.
        if (out.contentLength !== null || !DECIMAL.test(value) || TRAILING_TAB.test(raw))
          return null;
        out.contentLength = value;
        break;
      case 'transfer-encoding':
        if (out.transferEncoding !== null || TRAILING_TAB.test(raw)) return null;
        out.transferEncoding = value;
        break;
      case 'connection':
        for (const option of value.split(',').map(trimOws))
          if (option) out.connection.push(option.toLowerCase());
        break;
      case 'upgrade':
      case 'expect':
        out.upgradeOrExpect = true;
        break;
    }
    out.headers.push(name, value);
  }
  return out;
}

/**
 * Strips optional whitespace (spaces and tabs, RFC 9110 §5.6.3) and nothing else:
 * String.prototype.trim would also strip CR, LF, VT, FF and NBSP (0xa0 in latin1), which
 * llhttp refuses or keeps, so `Content-Length: 5\r` or `Transfer-Encoding: chunked\xa0` would
 * have been framed here though Node's parser rejects them.
 */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === ' ' || text[start] === '\t')) start++;
  while (end > start && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  return text.slice(start, end);
}

/**
 * Finds the end of a chunked body as its bytes stream past, without copying them: strict
 * chunk-size lines (hex digits, optional extensions, CRLF), each chunk's CRLF, and the
 * trailer section up to its blank line.
 */
export class ChunkedScanner {
  private state: 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' = 'size';
  private line = '';
  private left = 0;
  done = false;

  /**
   * Scans `data` from `offset`; returns how many bytes belong to the body (the rest is the next
   * message), or -1 when the framing is malformed.
   */
  push(data: Buffer, offset = 0): number {
    let i = offset;
    while (i < data.length && !this.done) {
      switch (this.state) {
        case 'data': {
          const take = Math.min(this.left, data.length - i);
          this.left -= take;
          i += take;
          if (this.left === 0) this.state = 'data-cr';
          break;
        }
        case 'data-cr':
          if (data[i++] !== 0x0d) return -1;
          this.state = 'data-lf';
          break;
        case 'data-lf':
          if (data[i++] !== 0x0a) return -1;
          this.state = 'size';
          break;
        default: {
          // A size line or a trailer line, up to its CRLF.
          const lf = data.indexOf(0x0a, i);
          const end = lf < 0 ? data.length : lf + 1;
          this.line += data.toString('latin1', i, end);
          i = end;
          if (this.line.length > 4096) return -1;
          if (lf < 0) break;
          if (!this.line.endsWith('\r\n')) return -1;
          const line = this.line.slice(0, -2);
          this.line = '';
          if (this.state === 'trailer') {
            if (line === '') {
              this.done = true;
              break;
            }
            // Framing fields are not allowed as trailers (RFC 9110 §6.5.1); llhttp refuses them.
            const field = TRAILER_FIELD.exec(line)?.[1]?.toLowerCase();
            if (!field || field === 'content-length' || field === 'transfer-encoding') return -1;
            break;
          }
          const size = CHUNK_SIZE_LINE.exec(line);
          if (!size) return -1;
          this.left = Number.parseInt(size[1] as string, 16);
          this.state = this.left === 0 ? 'trailer' : 'data';
        }
      }
    }
    return i - offset;
  }
}
