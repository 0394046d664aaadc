// Step logs of one execution (stdout, stderr, logging records), fetched incrementally with
// `since` while the execution page polls. The panel shows the selected step's records (every
// loop item's, or one item's) and stays at the end while the reader is there: a live tail.
import { get } from './api.js';
import { el, fmtTime } from './util.js';

const PAGE = 1000;
const TAGS = { stdout: 'out', stderr: 'err' };

function line(r) {
  const tag = TAGS[r.stream] || r.level;
  const msg = r.stream === 'log' && r.logger && r.logger !== 'root' ? `${r.logger}: ${r.message}` : r.message;
  return el('div', { class: `log-line l-${r.stream} lv-${r.level}`, 'data-testid': 'log-line', 'data-stream': r.stream },
    el('span', { class: 't', text: fmtTime(r.time, true) }),
    r.index !== null && r.index !== undefined ? el('span', { class: 'ix', text: `[${r.index}]` }) : '',
    el('span', { class: 'tag', text: tag }),
    el('span', { class: 'msg', text: msg }));
}

export class LogPanel {
  constructor(executionId) {
    this.id = executionId;
    this.since = 0;
    this.byStep = new Map();
    this.step = null;
    this.item = '';
    this.shownKey = null;
    this.shownCount = 0;
    this.count = el('span', { class: 'muted', 'data-testid': 'log-count' });
    this.itemSel = el('select', { 'data-testid': 'log-item', hidden: true });
    this.itemSel.addEventListener('change', () => { this.item = this.itemSel.value; this.render(); });
    this.body = el('div', { class: 'log-body', 'data-testid': 'step-logs' });
    this.root = el('div', { class: 'panel logs', 'data-testid': 'log-panel', hidden: true },
      el('div', { class: 'row' }, el('h3', { text: 'Logs' }), this.count, el('span', { class: 'spacer' }), this.itemSel),
      this.body);
  }

  // Fetch what was stored since the last call; redraw if the selected step got new records.
  async pull() {
    let fresh = false;
    for (;;) {
      const data = await get(`/api/executions/${this.id}/logs?since=${this.since}&limit=${PAGE}`);
      const items = data.items || [];
      for (const r of items) {
        if (!this.byStep.has(r.step)) this.byStep.set(r.step, []);
        this.byStep.get(r.step).push(r);
        if (r.step === this.step) fresh = true;
      }
      this.since = Number(data.last_id ?? this.since) || this.since;
      if (items.length < PAGE) break;
    }
    if (fresh) this.render();
  }

  select(step) {
    if (step === this.step) return;
    this.step = step;
    this.item = '';
    this.root.hidden = !step;
    this.render();
  }

  render() {
    const recs = this.byStep.get(this.step) || [];
    const items = [...new Set(recs.map((r) => r.index).filter((i) => i !== null && i !== undefined))].sort((a, b) => a - b);
    const opts = ['', ...items.map(String)];
    if (this.itemSel.options.length !== opts.length) {
      this.itemSel.replaceChildren(...opts.map((v) => el('option', { value: v, text: v === '' ? 'all items' : `item ${v}` })));
      this.itemSel.value = this.item;
    }
    this.itemSel.hidden = !items.length;
    const shown = this.item === '' ? recs : recs.filter((r) => String(r.index) === this.item);
    const key = `${this.step}|${this.item}`;
    const atEnd = this.body.scrollTop + this.body.clientHeight >= this.body.scrollHeight - 4;
    const reset = key !== this.shownKey || shown.length < this.shownCount;
    if (reset) {
      this.shownKey = key;
      this.shownCount = 0;
      this.body.replaceChildren();
    }
    if (!shown.length) {
      this.body.replaceChildren(el('p', { class: 'muted', 'data-testid': 'log-empty', text: 'No output from this step (yet).' }));
    } else {
      if (!this.shownCount) this.body.replaceChildren();
      this.body.append(...shown.slice(this.shownCount).map(line));
    }
    this.shownCount = shown.length;
    this.count.textContent = `${shown.length} record${shown.length === 1 ? '' : 's'}`;
    if (atEnd || reset) this.body.scrollTop = this.body.scrollHeight; // follow the tail
  }
}
