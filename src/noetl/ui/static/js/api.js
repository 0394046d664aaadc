// JSON calls to the NoETL API. A 401 opens the token dialog; the token is kept in
// sessionStorage and sent as "Authorization: Bearer ..." on every later call.

const KEY = 'noetl.token';
let asking = null;

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// Header note: connection trouble, or that a token is in use (with a way to forget it).
function showConn(text, bad) {
  const box = document.getElementById('conn');
  if (!box || box.dataset.text === `${text}|${bad}`) return;
  box.dataset.text = `${text}|${bad}`;
  box.classList.toggle('bad', bad);
  box.replaceChildren(text);
  if (!bad && getToken()) {
    const forget = document.createElement('a');
    forget.href = '#';
    forget.textContent = ' · forget';
    forget.setAttribute('data-testid', 'forget-token');
    forget.addEventListener('click', (ev) => { ev.preventDefault(); setToken(''); location.reload(); });
    box.append(forget);
  }
}

export function getToken() { return sessionStorage.getItem(KEY) || ''; }
export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
}

function message(body, res) {
  if (body && typeof body === 'object') {
    const d = body.detail ?? body.error ?? body.message;
    if (typeof d === 'string') return d;
    if (d && typeof d === 'object') return d.message || JSON.stringify(d);
    if (Array.isArray(body.detail)) return body.detail.map((x) => x.msg || JSON.stringify(x)).join('; ');
  }
  if (typeof body === 'string' && body) return body.slice(0, 300);
  return `${res.status} ${res.statusText}`;
}

function askToken(rejected) {
  if (asking) return asking;
  const dlg = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const reason = document.getElementById('token-reason');
  const form = document.getElementById('token-form');
  const cancel = document.getElementById('token-cancel');
  reason.textContent = rejected ? 'The token was rejected. Enter another token.'
    : 'The server asked for a bearer token.';
  input.value = '';
  asking = new Promise((resolve, reject) => {
    const done = (ok) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      if (dlg.open) dlg.close();
      asking = null;
      if (ok) resolve(); else reject(new ApiError(401, 'no token given'));
    };
    const onSubmit = (ev) => { ev.preventDefault(); setToken(input.value.trim()); done(true); };
    const onCancel = () => done(false);
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dlg.showModal();
    input.focus();
  });
  return asking;
}

export async function api(method, path, body) {
  for (;;) {
    const sent = getToken();
    const headers = { Accept: 'application/json' };
    if (sent) headers.Authorization = `Bearer ${sent}`;
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      showConn(`API unreachable (${e.message})`, true);
      throw new ApiError(0, `the API is unreachable: ${e.message}`);
    }
    showConn(getToken() ? 'token set' : '', false);
    if (res.status === 401) {
      // Another call may have obtained a new token meanwhile: retry with it before asking.
      if (getToken() && getToken() !== sent) continue;
      await askToken(Boolean(sent));
      continue;
    }
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch { data = text; } }
    if (!res.ok) throw new ApiError(res.status, message(data, res), data);
    return data;
  }
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
