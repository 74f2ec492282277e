// api.js: the console's only way to the gateway. Every call carries the
// signed-in API key as an Authorization header; the key lives in this tab's
// sessionStorage, never in a cookie or a URL.

const KEY = 'portico.key';

export const session = {
  get key() { return sessionStorage.getItem(KEY) || ''; },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

// APIError is an error answer of the gateway: its HTTP status and the code
// and message of the error envelope.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(res) {
  let code = '';
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code;
      message = body.error.message;
    }
  } catch { /* not the envelope: keep the status line */ }
  return new APIError(res.status, code, message);
}

function headers(key, extra = {}) {
  return { Authorization: 'Bearer ' + key, ...extra };
}

// call sends one request and answers the decoded JSON (or text), null for
// 204; an error answer throws an APIError.
export async function call(method, path, body, key = session.key) {
  const init = { method, headers: headers(key), cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new APIError(0, 'unreachable', 'cannot reach the gateway: ' + e.message);
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

// stream reads server-sent events with fetch, because EventSource cannot
// send the key as a header. It calls onOpen when the gateway has accepted
// the stream and onEvent({event, data}) for each event, and returns when
// the stream ends or signal aborts; an error answer throws an APIError.
export async function stream(path, { signal, onOpen, onEvent }) {
  const res = await fetch(path, {
    headers: headers(session.key, { Accept: 'text/event-stream' }),
    cache: 'no-store',
    signal,
  });
  if (!res.ok) throw await failure(res);
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('event:')) event = line.slice(6).trim();
      }
      if (data.length) onEvent({ event, data: data.join('\n') });
    }
  }
}

// parseMetrics reads the Prometheus text format into samples
// {name, labels, value}.
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
