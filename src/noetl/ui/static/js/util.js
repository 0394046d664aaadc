// Small DOM and formatting helpers shared by the views.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export const STATUSES = ['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'SKIPPED'];
export const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export function badge(status) {
  const s = String(status || 'PENDING').toUpperCase();
  return el('span', { class: `badge s-${s}`, 'data-status': s, text: s });
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

export function fmtTime(epoch, withMs = false) {
  if (epoch === null || epoch === undefined || epoch === '') return '';
  const d = new Date(Number(epoch) * 1000);
  if (Number.isNaN(d.getTime())) return String(epoch);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? `${t}.${pad(d.getMilliseconds(), 3)}` : t;
}

export function fmtDate(epoch) {
  if (epoch === null || epoch === undefined || epoch === '') return '';
  const d = new Date(Number(epoch) * 1000);
  if (Number.isNaN(d.getTime())) return String(epoch);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(epoch)}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || seconds === '') return '';
  const s = Number(seconds);
  if (!Number.isFinite(s)) return '';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

// Elapsed time of something that may still be running.
export function elapsed(start, end, duration) {
  if (duration !== null && duration !== undefined) return duration;
  if (!start) return null;
  return (end ? Number(end) : Date.now() / 1000) - Number(start);
}

export function pretty(value) {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  try { return JSON.stringify(value, null, 2); } catch { return String(value); }
}

// Lists come back bare or wrapped ({items: [...]}, {events: [...]}, ...): accept either.
export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === 'object') {
    for (const k of [...keys, 'items', 'entries', 'results', 'data']) {
      if (Array.isArray(data[k])) return data[k];
    }
  }
  return [];
}

export function errorText(err) {
  if (!err) return '';
  if (typeof err === 'string') return err;
  const type = err.type || err.error_type;
  const msg = err.message || err.error || err.detail || '';
  return type ? `${type}: ${msg}` : String(msg || JSON.stringify(err));
}

export function toast(message, ms = 3000) {
  const t = el('div', { class: 'toast', role: 'status', text: message });
  document.body.append(t);
  setTimeout(() => t.remove(), ms);
}

// Run fn now and then every `ms` after each run finishes, until stop() is called.
export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    let again = true;
    try { again = (await fn()) !== false; } catch (e) { console.warn('poll', e); }
    if (!stopped && again) timer = setTimeout(tick, ms);
  };
  tick();
  return { stop() { stopped = true; if (timer) clearTimeout(timer); } };
}

export function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
