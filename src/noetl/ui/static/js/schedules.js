// Schedules: when each one fires next, how its last fire went, pause/resume; its recent runs.
import { get, post, query } from './api.js';
import { badge, el, errorText, fmtDate, fmtDuration, listOf, poll, toast } from './util.js';

function lastCell(s) {
  const cell = el('td', { 'data-testid': 'schedule-last' });
  if (!s.last_status) {
    cell.append(el('span', { class: 'muted', text: 'never fired' }));
    return cell;
  }
  cell.append(el('span', { text: s.last_status }), ' ');
  if (s.last_execution_id) {
    cell.append(el('a', { href: `#/executions/${s.last_execution_id}`, class: 'mono',
      text: s.last_execution_id }), ' ', badge(s.last_execution_status));
  }
  return cell;
}

function runsTable(runs) {
  if (!runs.length) return el('p', { class: 'muted', text: 'No fires yet.' });
  return el('table', { class: 'grid', 'data-testid': 'schedule-runs' },
    el('thead', {}, el('tr', {}, ['Nominal time', 'Outcome', 'Execution', 'Status', 'Lag']
      .map((h) => el('th', { text: h })))),
    el('tbody', {}, runs.map((r) => el('tr', { 'data-testid': 'schedule-run', 'data-outcome': r.outcome },
      el('td', { text: fmtDate(r.nominal_at) }),
      el('td', { text: r.outcome === 'missed' && r.detail ? `missed ×${r.detail.count}` : r.outcome }),
      el('td', {}, r.execution_id ? el('a', { href: `#/executions/${r.execution_id}`, class: 'mono',
        text: r.execution_id }) : ''),
      el('td', {}, r.status ? badge(r.status) : ''),
      el('td', { text: r.lag === null || r.lag === undefined ? '' : fmtDuration(r.lag) })))));
}

export function renderSchedules(view, params) {
  const box = el('div', { 'data-testid': 'schedules' }, el('p', { class: 'muted', text: 'Loading…' }));
  const runsBox = el('div', { 'data-testid': 'schedule-runs-box' });
  view.append(el('h2', { text: 'Schedules' }), box, runsBox);
  let selected = params.id || null;

  async function toggle(s) {
    try {
      await post(`/api/schedules/${s.schedule_id}/${s.enabled ? 'pause' : 'resume'}`);
      toast(`schedule ${s.enabled ? 'paused' : 'resumed'}`);
      await refresh();
    } catch (e) { toast(`cannot change the schedule: ${e.message}`, 5000); }
  }

  async function showRuns() {
    if (!selected) { runsBox.replaceChildren(); return; }
    try {
      const runs = listOf(await get(`/api/schedules/${selected}/runs${query({ limit: 50 })}`));
      runsBox.replaceChildren(el('h3', { text: `Runs of schedule ${selected}` }), runsTable(runs));
    } catch (e) {
      runsBox.replaceChildren(el('div', { class: 'error-box', text: `Cannot list runs: ${errorText(e)}` }));
    }
  }

  async function refresh() {
    let items;
    try {
      items = listOf(await get(`/api/schedules${query({ path: params.path, n: 3 })}`));
    } catch (e) {
      box.replaceChildren(el('div', { class: 'error-box', text: `Cannot list schedules: ${e.message}` }));
      return;
    }
    if (!items.length) {
      box.replaceChildren(el('p', { class: 'muted', text: 'No schedules. Declare one in a playbook '
        + '(schedule: [{cron: "0 2 * * *"}]) or add one: noetl schedule add PATH --interval 5m' }));
      await showRuns();
      return;
    }
    box.replaceChildren(el('table', { class: 'grid' },
      el('thead', {}, el('tr', {}, ['Playbook', 'When', 'Next fires', 'Last fire', 'Source', '']
        .map((h) => el('th', { text: h })))),
      el('tbody', {}, items.map((s) => el('tr', {
        'data-testid': 'schedule-row', 'data-id': s.schedule_id,
        'data-enabled': s.enabled ? 'true' : 'false' },
      el('td', {}, el('a', { href: `#/catalog?path=${encodeURIComponent(s.path)}`, text: s.path }),
        s.version ? el('span', { class: 'muted', text: ` v${s.version}` }) : ''),
      el('td', { text: s.timing }),
      el('td', { 'data-testid': 'schedule-next' }, s.enabled
        ? s.next_fires.map((t) => el('div', { class: 'mono', text: fmtDate(t) }))
        : el('span', { class: 'muted', text: 'paused' })),
      lastCell(s),
      el('td', { text: s.source }),
      el('td', {},
        el('button', { 'data-testid': 'schedule-toggle', onclick: () => toggle(s),
          text: s.enabled ? 'Pause' : 'Resume' }), ' ',
        el('button', { 'data-testid': 'schedule-show-runs',
          onclick: () => { selected = s.schedule_id; showRuns(); }, text: 'Runs' })))))));
    await showRuns();
  }

  const p = poll(refresh, 2000);
  return () => p.stop();
}
