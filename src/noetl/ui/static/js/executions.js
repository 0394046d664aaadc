// Executions: a paginated list with a status filter and a free-text search (part of the
// playbook path or of the error, or the start of an execution id), counts per status;
// refreshes itself every 2 s.
import { get, post, query } from './api.js';
import {
  STATUSES, badge, clear, debounce, el, elapsed, errorText, fmtDate, fmtDuration, listOf, poll,
} from './util.js';

const PAGE = 25;

export function renderExecutions(view, params) {
  // `path` (exact) still works in links; the search box sets `q`
  const state = { status: (params.status || '').toUpperCase(), path: params.path || '', q: params.q || '',
    offset: Number(params.offset || 0), limit: Math.min(1000, Math.max(1, Number(params.limit) || PAGE)) };
  const counts = el('div', { class: 'counts', 'data-testid': 'status-counts' });
  const statusSel = el('select', { 'data-testid': 'status-filter' },
    el('option', { value: '', text: 'All statuses' }), STATUSES.map((s) => el('option', { value: s, text: s })));
  statusSel.value = state.status;
  // free text; the catalog's paths are offered as suggestions
  const paths = el('datalist', { id: 'playbook-paths' });
  const searchIn = el('input', { type: 'search', placeholder: 'Search playbook path, error or execution id…',
    value: state.q, 'data-testid': 'search-filter', size: 60, list: 'playbook-paths' });
  const pathChip = el('button', { class: 'chip', 'data-testid': 'path-chip', title: 'Remove this filter', hidden: !state.path,
    text: `path = ${state.path} ×`, onclick: () => { state.path = ''; pathChip.hidden = true; refilter(); } });
  post('/api/catalog/list', { latest_only: true }).then((d) => {
    const seen = [...new Set(listOf(d, 'entries').map((e) => e.path))].sort();
    paths.replaceChildren(...seen.map((p) => el('option', { value: p })));
  }).catch(() => {});
  const body = el('tbody', { 'data-testid': 'executions-body' });
  const pageInfo = el('span', { class: 'muted', 'data-testid': 'page-info' });
  const prev = el('button', { text: '‹ Newer', 'data-testid': 'prev-page' });
  const next = el('button', { text: 'Older ›', 'data-testid': 'next-page' });
  const updated = el('span', { class: 'muted', 'data-testid': 'updated' });

  view.append(
    el('div', { class: 'row' }, el('h2', { text: 'Executions' }), el('span', { class: 'spacer' }), updated),
    el('div', { class: 'row' }, statusSel, searchIn, paths, pathChip),
    counts,
    el('table', { class: 'grid', 'data-testid': 'executions-table' },
      el('thead', {}, el('tr', {}, ['Execution', 'Playbook', 'Version', 'Status', 'Started', 'Duration',
        'Parent', 'Error'].map((h) => el('th', { text: h })))), body),
    el('div', { class: 'row pager' }, prev, next, pageInfo));

  function syncHash() {
    const q = query({ status: state.status, path: state.path, q: state.q, offset: state.offset || '',
      limit: state.limit === PAGE ? '' : state.limit });
    history.replaceState(null, '', `#/executions${q}`);
  }
  function refilter() { state.offset = 0; syncHash(); refresh(); }
  statusSel.addEventListener('change', () => { state.status = statusSel.value; refilter(); });
  searchIn.addEventListener('input', debounce(() => { state.q = searchIn.value.trim(); refilter(); }, 300));
  prev.addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); syncHash(); refresh(); });
  next.addEventListener('click', () => { state.offset += state.limit; syncHash(); refresh(); });

  function drawCounts(c) {
    clear(counts);
    const total = Object.values(c || {}).reduce((a, b) => a + Number(b || 0), 0);
    const chip = (label, value, n) => el('button', {
      class: state.status === value ? 'on' : '', 'data-testid': `count-${label}`, 'data-count': n,
      onclick: () => { state.status = value; statusSel.value = value; refilter(); },
    }, value ? badge(value) : 'All', ` ${n}`);
    counts.append(chip('ALL', '', total));
    for (const s of STATUSES) if (c && c[s]) counts.append(chip(s, s, c[s]));
  }

  function row(x) {
    const link = (id) => el('a', { href: `#/executions/${id}`, class: 'mono', text: id });
    return el('tr', { 'data-testid': 'execution-row', 'data-id': x.execution_id, 'data-status': x.status },
      el('td', {}, link(x.execution_id)),
      el('td', { text: x.path }),
      el('td', { text: x.version ?? '' }),
      el('td', {}, badge(x.status)),
      el('td', { text: fmtDate(x.start_time) }),
      el('td', { text: fmtDuration(elapsed(x.start_time, x.end_time, x.duration)) }),
      el('td', {}, x.parent_execution_id ? link(x.parent_execution_id) : ''),
      el('td', { class: 'err', text: errorText(x.error).slice(0, 200) }));
  }

  let busy = false;
  let again = false; // the filters changed while a request was out: ask again after it
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    again = false;
    try {
      const url = `/api/executions${query({ status: state.status, path: state.path, q: state.q,
        limit: state.limit, offset: state.offset })}`;
      const data = await get(url);
      if (again) return; // answered for filters no longer shown
      const items = data.items || [];
      clear(body);
      if (!items.length) {
        body.append(el('tr', {}, el('td', { colspan: 8, class: 'muted', 'data-testid': 'no-executions',
          text: state.q || state.status || state.path ? 'No executions match.' : 'No executions.' })));
      }
      for (const x of items) body.append(row(x));
      drawCounts(data.counts);
      const total = Number(data.total ?? items.length);
      pageInfo.textContent = total ? `${state.offset + 1}–${state.offset + items.length} of ${total}` : '';
      prev.disabled = state.offset <= 0;
      next.disabled = state.offset + items.length >= total;
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      clear(body).append(el('tr', {}, el('td', { colspan: 8 },
        el('div', { class: 'error-box', text: `Cannot list executions: ${e.message}` }))));
    } finally {
      busy = false;
      if (again) refresh();
    }
  }
  const p = poll(refresh, 2000);
  return () => p.stop();
}
