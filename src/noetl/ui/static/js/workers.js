// Workers: every registered worker pool (remote `noetl worker start`, the pool inside
// `noetl server start`, a `noetl run`), alive or not, with the jobs it holds. Refreshes every 2 s.
import { get } from './api.js';
import { clear, el, fmtDate, fmtDuration, fmtTime, poll } from './util.js';

const STATE_CLASS = { alive: 's-COMPLETED', lost: 's-FAILED', stopped: 's-SKIPPED' };

function stateBadge(state) {
  return el('span', { class: `badge ${STATE_CLASS[state] || ''}`, 'data-state': state, text: state });
}

function jobs(list) {
  if (!list.length) return el('span', { class: 'muted', text: '—' });
  return el('div', {}, list.slice(0, 10).map((j) => el('div', { 'data-testid': 'worker-job' },
    el('a', { href: `#/executions/${j.execution_id}`, class: 'mono', text: j.execution_id }),
    ` ${j.step}${j.index !== null && j.index !== undefined ? `[${j.index}]` : ''}`,
    el('span', { class: 'muted', text: ` attempt ${j.attempt} · lease until ${fmtTime(j.lease_until)}` }))),
  list.length > 10 ? el('div', { class: 'muted', text: `… and ${list.length - 10} more` }) : '');
}

export function renderWorkers(view) {
  const counts = el('div', { class: 'counts', 'data-testid': 'worker-counts' });
  const body = el('tbody', { 'data-testid': 'workers-body' });
  const updated = el('span', { class: 'muted', 'data-testid': 'updated' });
  view.append(
    el('div', { class: 'row' }, el('h2', { text: 'Workers' }), el('span', { class: 'spacer' }), updated),
    el('p', { class: 'muted', text: 'A worker is alive while its last heartbeat is younger than its lease time; '
      + 'a lost worker\'s jobs go back to the queue when their leases run out.' }),
    counts,
    el('table', { class: 'grid', 'data-testid': 'workers-table' },
      el('thead', {}, el('tr', {}, ['Worker', 'State', 'Mode', 'Host · pid', 'Threads busy', 'Jobs done',
        'Last heartbeat', 'Started', 'Leased jobs'].map((h) => el('th', { text: h })))), body));

  function row(w) {
    const seen = w.state === 'stopped' ? `stopped ${fmtDate(w.stopped_at)}`
      : `${fmtDuration(w.seen_ago)} ago`;
    return el('tr', { 'data-testid': 'worker-row', 'data-worker': w.worker_id, 'data-state': w.state },
      el('td', { class: 'mono', text: w.worker_id }),
      el('td', {}, stateBadge(w.state)),
      el('td', { text: w.mode }),
      el('td', { text: `${w.hostname || ''} · ${w.pid ?? ''}` }),
      el('td', { text: w.state === 'alive' ? `${w.running} / ${w.concurrency}` : `— / ${w.concurrency}` }),
      el('td', { text: w.jobs_done }),
      el('td', { 'data-testid': 'worker-seen', text: seen }),
      el('td', { text: fmtDate(w.started_at) }),
      el('td', {}, jobs(w.jobs || [])));
  }

  async function refresh() {
    let data;
    try {
      data = await get('/api/workers');
    } catch (e) {
      clear(body).append(el('tr', {}, el('td', { colspan: 9 },
        el('div', { class: 'error-box', text: `Cannot list workers: ${e.message}` }))));
      return;
    }
    const items = data.items || [];
    const c = data.counts || {};
    counts.replaceChildren(...['alive', 'lost', 'stopped'].map((s) => el('span',
      { class: 'chip', 'data-testid': `workers-${s}`, 'data-count': c[s] || 0 }, stateBadge(s), ` ${c[s] || 0}`)));
    clear(body);
    if (!items.length) {
      body.append(el('tr', {}, el('td', { colspan: 9, class: 'muted', 'data-testid': 'no-workers',
        text: 'No worker has registered. `noetl server start` on SQLite runs workers inside the server; '
          + 'otherwise start one with: noetl worker start --server URL' })));
    }
    for (const w of items) body.append(row(w));
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }
  const p = poll(refresh, 2000);
  return () => p.stop();
}
