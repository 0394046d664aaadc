// Step logs of one execution (stdout, stderr, logging records), fetched incrementally with
// `since` while the execution page polls: the selected step's only. The panel shows its records
// (every loop item's, or one item's) and stays at the end while the reader is there: a live
// tail.
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
    r.attempt > 1 ? el('span', { class: 'att', title: `attempt ${r.attempt}`, text: `#${r.attempt}` }) : '',
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

  // Fetch the selected step's records stored since the last call (each step's are fetched
  // when it is first selected, then incrementally); redraw when there are new ones.
  pull() {
    const step = this.step;
    if (!step) return Promise.resolve();
    if (!this.byStep.has(step)) this.byStep.set(step, { since: 0, recs: [], tail: Promise.resolve() });
    const held = this.byStep.get(step);
    // one fetch per step at a time, each after the one before (none stored twice, none missed)
    held.tail = held.tail.catch(() => {}).then(() => this.fetchStep(step, held));
    return held.tail;
  }

  async fetchStep(step, held) {
    let fresh = false;
    for (;;) {
      const q = `step=${encodeURIComponent(step)}&since=${held.since}&limit=${PAGE}`;
      const data = await get(`/api/executions/${this.id}/logs?${q}`);
      const items = data.items || [];
      held.recs.push(...items);
      fresh = fresh || items.length > 0;
      held.since = Number(data.last_id ?? held.since) || held.since;
      if (items.length < PAGE) break;
    }
    if (fresh && step === this.step) this.render();
  }

  select(step) {
    if (step === this.step) return;
    this.step = step;
    this.item = '';
    this.root.hidden = !step;
    this.render();
    this.pull().catch((e) => console.warn('logs', e)); // at once, not at the next poll
  }

  render() {
    const recs = this.byStep.get(this.step)?.recs || [];
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
