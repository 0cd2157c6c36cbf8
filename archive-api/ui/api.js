// The /v1 API with the signed-in person's bearer token (kept in sessionStorage: this tab only).

const TOKEN_KEY = 'sohoa.token';

/** An answer of the API that is not a success: its status, stable code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = () => {};

/** Calls `handler` when the server refuses the token (401), e.g. to show the sign-in form again. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Sends a request; resolves to the Response when it succeeded, rejects with an ApiError otherwise. */
export async function request(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const current = token();
  if (current) headers.set('Authorization', `Bearer ${current}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (cause) {
    throw new ApiError(0, 'network', cause.message);
  }
  if (response.ok) return response;
  let code = 'error';
  let message = response.statusText;
  try {
    const body = await response.json();
    code = body.code || code;
    message = body.message || message;
  } catch {
    // Not JSON: keep the status text.
  }
  if (response.status === 401) onUnauthorized();
  throw new ApiError(response.status, code, message);
}

/** GET (or another method with a JSON body) answering JSON. */
export async function json(path, method = 'GET', body = undefined) {
  const options = { method };
  if (body !== undefined) {
    options.headers = { 'Content-Type': 'application/json' };
    options.body = JSON.stringify(body);
  }
  const response = await request(path, options);
  return response.status === 204 ? null : response.json();
}

/** The body of a GET as a Blob (page images, PDFs). */
export async function blob(path) {
  return (await request(path)).blob();
}

/** A query string of the parameters that have a value. */
export function query(parameters) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Follows a job's Server-Sent Events (`progress`, then `done` or `failed`), calling `onEvent(name, job)`
 * for each. Read with fetch() so the bearer token goes in the header (EventSource cannot send one).
 * Resolves with the last job once it is done or failed; if the stream ends early, the job is polled.
 */
export async function followJob(id, onEvent) {
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  let last = null;
  try {
    const response = await request(`${path}/events`, { headers: { Accept: 'text/event-stream' } });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length === 0) continue;
        last = JSON.parse(data.join('\n'));
        onEvent(name, last);
        if (name === 'done' || name === 'failed') {
          await reader.cancel();
          return last;
        }
      }
    }
  } catch (error) {
    if (error instanceof ApiError && error.status !== 0) throw error;
  }
  // The stream broke off (a proxy, a restart): poll until the job ends.
  for (;;) {
    last = await json(path);
    const name = last.state === 'done' || last.state === 'failed' ? last.state : 'progress';
    onEvent(name, last);
    if (name !== 'progress') return last;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Vietnamese-aware folding, as the search index does: no tone or vowel marks, đ → d, lower case. */
export function fold(text) {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/[đĐ]/g, 'd')
    .toLowerCase()
    .normalize('NFC');
}
