// The items of a loop step, a page at a time (GET .../steps/{step}/items): index, status,
// attempts, duration, the item, its result or error. A row opens the item's full detail.
import { get, query } from './api.js';
import { badge, el, elapsed, errorText, fmtDate, fmtDuration, pretty } from './util.js';

const PAGE = 50;
const FILTERS = ['FAILED', 'RUNNING', 'QUEUED', 'PENDING', 'COMPLETED', 'CANCELLED'];

function short(value, n = 60) {
  if (value === undefined || value === null) return '';
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export class LoopItems {
  constructor(executionId, step) {
    this.executionId = executionId;
    this.step = step;
    this.offset = 0;
    this.status = '';
    this.open = new Set(); // indexes whose detail is shown
    this.sig = null;
    this.busy = false;
    this.summary = el('div', { class: 'muted', 'data-testid': 'loop-items-summary' });
    this.filter = el('select', { 'data-testid': 'loop-items-filter' },
      el('option', { value: '', text: 'All items' }), FILTERS.map((s) => el('option', { value: s, text: s })));
    this.filter.addEventListener('change', () => { this.status = this.filter.value; this.offset = 0; this.refresh(); });
    this.body = el('tbody', { 'data-testid': 'loop-items-body' });
    this.info = el('span', { class: 'muted', 'data-testid': 'loop-items-page' });
    this.prev = el('button', { text: '‹', title: 'Previous items', 'data-testid': 'loop-items-prev',
      onclick: () => { this.offset = Math.max(0, this.offset - PAGE); this.refresh(); } });
    this.next = el('button', { text: '›', title: 'Next items', 'data-testid': 'loop-items-next',
      onclick: () => { this.offset += PAGE; this.refresh(); } });
    this.root = el('div', { class: 'loop-items', 'data-testid': 'loop-items' },
      el('h4', { text: 'items' }),
      el('div', { class: 'row' }, this.filter, el('span', { class: 'spacer' }), this.prev, this.info, this.next),
      this.summary,
      el('table', { class: 'grid items' },
        el('thead', {}, el('tr', {}, ['#', 'status', 'attempts', 'duration', 'item', 'result / error']
          .map((h) => el('th', { text: h })))),
        this.body));
  }

  async refresh() {
    if (this.busy) return;
    this.busy = true;
    try {
      const data = await get(`/api/executions/${this.executionId}/steps/${encodeURIComponent(this.step)}/items${
        query({ offset: this.offset, limit: PAGE, status: this.status })}`);
      this.draw(data);
    } catch (e) {
      this.body.replaceChildren(el('tr', {}, el('td', { colspan: 6 },
        el('div', { class: 'error-box', text: `Cannot load the items: ${e.message}` }))));
    } finally {
      this.busy = false;
    }
  }

  draw(data) {
    const live = (data.items || []).some((i) => i.status === 'RUNNING'); // durations tick
    const sig = JSON.stringify([data, [...this.open], live ? Math.floor(Date.now() / 1000) : 0]);
    if (sig === this.sig) return; // unchanged: keep selections and scroll as they are
    this.sig = sig;
    const counts = data.counts || {};
    const parts = Object.entries(counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s.toLowerCase()}`);
    this.summary.textContent = `${data.total ?? 0} items${parts.length ? `: ${parts.join(' · ')}` : ''}${
      data.failed ? ' — the loop stopped after an item failed' : ''}`;
    const items = data.items || [];
    const n = Number(data.matching ?? items.length);
    this.info.textContent = n ? `${this.offset + 1}–${this.offset + items.length} of ${n}` : '0';
    this.prev.disabled = this.offset <= 0;
    this.next.disabled = this.offset + items.length >= n;
    const rows = [];
    if (!items.length) {
      rows.push(el('tr', {}, el('td', { colspan: 6, class: 'muted',
        text: data.run === null || data.run === undefined ? 'The loop has not started.' : 'No items.' })));
    }
    for (const it of items) {
      const bad = it.status === 'FAILED' || (it.error && it.status === 'QUEUED');
      const outcome = it.error ? errorText(it.error) : short(it.result);
      const tr = el('tr', { 'data-testid': 'loop-item', 'data-index': it.index, 'data-status': it.status,
        class: `clickable${this.open.has(it.index) ? ' sel' : ''}` },
        el('td', { class: 'mono', text: it.index }),
        el('td', {}, badge(it.status)),
        el('td', { 'data-testid': 'loop-item-attempts', text: it.max_attempts > 1 ? `${it.attempts} / ${it.max_attempts}` : it.attempts }),
        el('td', { 'data-testid': 'loop-item-duration', text: fmtDuration(elapsed(it.started_at, it.ended_at, it.duration)) }),
        el('td', { class: 'mono', text: short(it.item, 40) }),
        el('td', { class: bad ? 'err' : 'mono', 'data-testid': 'loop-item-outcome', text: outcome }));
      tr.addEventListener('click', () => {
        if (this.open.has(it.index)) this.open.delete(it.index); else this.open.add(it.index);
        this.sig = null;
        this.draw(data);
      });
      rows.push(tr);
      if (this.open.has(it.index)) rows.push(this.detail(it));
    }
    this.body.replaceChildren(...rows);
  }

  detail(it) {
    const box = el('div', { class: 'item-detail' },
      el('div', { class: 'muted', text: [it.worker_id && `worker ${it.worker_id}`, it.started_at && `started ${fmtDate(it.started_at)}`,
        it.retry_at && `retry at ${fmtDate(it.retry_at)}`].filter(Boolean).join(' · ') }),
      el('h4', { text: 'item' }), el('pre', { text: pretty(it.item) }));
    if (it.child_execution_id) {
      box.append(el('div', {}, 'sub-playbook execution ',
        el('a', { href: `#/executions/${it.child_execution_id}`, class: 'mono', text: it.child_execution_id })));
    }
    if (it.result !== null && it.result !== undefined) box.append(el('h4', { text: 'result' }), el('pre', { 'data-testid': 'loop-item-result', text: pretty(it.result) }));
    if (it.error) {
      box.append(el('div', { class: 'error-box', 'data-testid': 'loop-item-error' }, el('strong', { text: errorText(it.error) }),
        it.error.traceback ? el('pre', { text: it.error.traceback }) : ''));
    }
    return el('tr', { class: 'detail', 'data-testid': 'loop-item-detail' }, el('td', { colspan: 6 }, box));
  }
}
