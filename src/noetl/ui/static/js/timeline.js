// The event timeline: a virtualised list. Only the rows in view (plus a margin) exist in the
// DOM, so thousands of events stay responsive. Follows the tail while scrolled to the bottom.
import { el, fmtDuration, fmtTime } from './util.js';

const ROW = 24;
const MARGIN = 12;

function summary(e) {
  if (e.error) return `${e.error_type ? `${e.error_type}: ` : ''}${e.error}`;
  const r = e.result;
  if (r === null || r === undefined) return '';
  const s = typeof r === 'string' ? r : JSON.stringify(r);
  return s.length > 160 ? `${s.slice(0, 159)}…` : s;
}

export class Timeline {
  constructor(onSelect) {
    this.onSelect = onSelect;
    this.events = [];
    this.shown = []; // indices into events that pass the filter
    this.filter = '';
    this.selected = null;
    this.queued = false;
    this.count = el('span', { class: 'muted', 'data-testid': 'timeline-count' });
    this.filterIn = el('input', { type: 'search', placeholder: 'Filter: step, event type, status…',
      'data-testid': 'timeline-filter', size: 30 });
    this.filterIn.addEventListener('input', () => this.setFilter(this.filterIn.value));
    this.spacer = el('div', { class: 'spacer-y' });
    this.box = el('div', { class: 'timeline', 'data-testid': 'timeline' }, this.spacer);
    this.box.addEventListener('scroll', () => this.schedule());
    this.root = el('div', { class: 'panel timeline-panel' },
      el('div', { class: 'row' }, el('h3', { text: 'Events' }), this.count, el('span', { class: 'spacer' }),
        this.filterIn),
      el('div', { class: 'tl-head' }, ['seq', 'time', 'event', 'step', 'status', 'attempt', 'duration', 'detail']
        .map((h) => el('span', { text: h }))),
      this.box);
  }

  matches(e) {
    if (!this.filter) return true;
    const f = this.filter;
    return [e.node_name, e.event_type, e.status, e.error, e.error_type]
      .some((v) => v && String(v).toLowerCase().includes(f));
  }

  atBottom() {
    return this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - ROW * 2;
  }

  append(events) {
    if (!events.length) return;
    const follow = this.atBottom();
    const base = this.events.length;
    this.events.push(...events);
    events.forEach((e, i) => { if (this.matches(e)) this.shown.push(base + i); });
    this.resize(follow);
  }

  setFilter(text) {
    this.filter = text.trim().toLowerCase();
    this.shown = [];
    this.events.forEach((e, i) => { if (this.matches(e)) this.shown.push(i); });
    this.resize(true);
  }

  resize(follow) {
    this.spacer.style.height = `${this.shown.length * ROW}px`;
    this.count.textContent = this.filter ? `${this.shown.length} of ${this.events.length}`
      : `${this.events.length}`;
    if (follow) this.box.scrollTop = this.box.scrollHeight;
    this.schedule();
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => { this.queued = false; this.render(); });
  }

  render() {
    const top = this.box.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - MARGIN);
    const last = Math.min(this.shown.length, Math.ceil((top + this.box.clientHeight) / ROW) + MARGIN);
    const rows = [];
    for (let k = first; k < last; k++) {
      const e = this.events[this.shown[k]];
      const bad = e.status === 'FAILED' || Boolean(e.error);
      const step = e.node_name ? `${e.node_name}${e.current_index !== null && e.current_index !== undefined
        ? `[${e.current_index}]` : ''}` : '';
      const row = el('div', {
        class: `tl-row${bad ? ' bad' : ''}${this.selected === e ? ' sel' : ''}`, 'data-testid': 'timeline-row',
        'data-seq': e.seq, 'data-event': e.event_type, style: `top:${k * ROW}px`,
        onclick: () => { this.selected = e; this.onSelect(e); this.schedule(); },
      },
      el('span', { class: 'mono', text: e.seq ?? '' }),
      el('span', { class: 'mono', text: fmtTime(e.created_at, true) }),
      el('span', { text: e.event_type }),
      el('span', { text: step, title: step }),
      el('span', { text: e.status || '' }),
      el('span', { text: e.attempt ?? '' }),
      el('span', { text: fmtDuration(e.duration) }),
      el('span', { text: summary(e), title: summary(e) }));
      rows.push(row);
    }
    this.spacer.replaceChildren(...rows);
  }
}
