// One execution: header with Cancel, the live step graph, step details (with the items of a
// loop), children and the event timeline (fetched incrementally with since_seq). Each poll
// reads the execution and its graph together (one read of the store) until both have ended.
import { get, post } from './api.js';
import { drawGraph, shapeKey } from './graph.js';
import { LoopItems } from './items.js';
import { Lineage } from './lineage.js';
import { LogPanel } from './logs.js';
import { Timeline } from './timeline.js';
import { highlightYaml, stepBlock } from './yaml.js';
import {
  TERMINAL, badge, clear, el, elapsed, errorText, fmtDate, fmtDuration, fmtTime, poll, pretty, toast,
} from './util.js';

const EVENT_PAGE = 1000;

// An error as the user wrote it first: for a template error the step and field, the template
// and the reason; for a python error its message and the step's own frames (at the YAML
// file's lines). The whole traceback, engine frames included, stays behind a toggle.
function errorBlock(err, testid) {
  if (!err) return null;
  const box = el('div', { class: 'error-box', 'data-testid': testid });
  if (typeof err !== 'object') {
    box.append(el('strong', { text: errorText(err) }));
    return box;
  }
  const hasIndex = err.index !== undefined && err.index !== null;
  const where = [err.step && `step ${err.step}`, err.field && `field ${err.field}`, err.at,
    hasIndex && `item ${err.index}`].filter(Boolean).join(' · ');
  const whereEl = where ? el('div', { class: 'error-where', 'data-testid': `${testid}-where`, text: where }) : null;
  if (err.template !== undefined && err.template !== null) {
    box.append(whereEl || '',
      el('pre', { class: 'error-template', 'data-testid': `${testid}-template`, text: err.template }),
      el('strong', { 'data-testid': `${testid}-message`, text: `${err.type}: ${err.reason || err.message}` }));
  } else {
    box.append(el('strong', { 'data-testid': `${testid}-message`, text: errorText(err) }), whereEl || '');
  }
  if (err.user_traceback) {
    box.append(el('pre', { 'data-testid': `${testid}-traceback`, text: err.user_traceback }));
  }
  if (err.traceback) {
    box.append(el('details', { class: 'error-engine' },
      el('summary', { text: 'whole traceback (engine frames included)' }),
      el('pre', { 'data-testid': `${testid}-engine-traceback`, text: err.traceback })));
  }
  return box;
}

function section(title, value, testid) {
  if (value === undefined || value === null) return [];
  return [el('h4', { text: title }), el('pre', { 'data-testid': testid, text: pretty(value) })];
}

export function renderExecution(view, id) {
  let desc = null;
  let graphKey = null;
  let updateGraph = null;
  let lastGraph = null;
  let selected = null;
  let lastSeq = 0;
  let alive = true;
  let source = null; // the playbook text, when the execution came from the catalog
  let stepSig = null;
  let errorSig = null;
  let items = null; // LoopItems of the selected step, when it is a loop

  const title = el('h2', { 'data-testid': 'exec-title', text: `Execution ${id}` });
  const status = el('span', { 'data-testid': 'exec-status' });
  const facts = el('div', { class: 'facts' });
  const cancelBtn = el('button', { class: 'danger', 'data-testid': 'cancel-button', text: 'Cancel', disabled: true });
  const errorBox = el('div', { 'data-testid': 'exec-error-wrap' });
  const waitBox = el('div', { 'data-testid': 'exec-waiting-wrap' }); // steps stuck (no worker, lost lease)
  const graphHost = el('div', { class: 'panel graph-wrap', 'data-testid': 'graph-host' },
    el('p', { class: 'muted', text: 'Loading the step graph…' }));
  const stepBox = el('div', { class: 'panel step-detail', 'data-testid': 'step-detail' },
    el('p', { class: 'muted', text: 'Click a step in the graph to see its input, result and error.' }));
  const eventBox = el('div', { class: 'panel event-detail', 'data-testid': 'event-detail', hidden: true });
  const childBox = el('div', { class: 'panel children', 'data-testid': 'children', hidden: true });
  const timeline = new Timeline(showEvent);
  const logPanel = new LogPanel(id);
  const lineage = new Lineage(id);

  view.append(
    el('div', { class: 'exec-head' }, title, status, facts, el('span', { class: 'spacer' }), lineage.buttons, cancelBtn),
    errorBox,
    waitBox,
    lineage.root,
    el('div', { class: 'exec-grid' }, graphHost, el('div', { class: 'side' }, stepBox, logPanel.root, eventBox, childBox)),
    timeline.root);

  cancelBtn.addEventListener('click', async () => {
    if (!confirm(`Cancel execution ${id}?`)) return;
    cancelBtn.disabled = true;
    try {
      await post(`/api/executions/${id}/cancel`);
      toast('Cancel requested');
    } catch (e) {
      toast(`Cancel failed: ${e.message}`);
      cancelBtn.disabled = false;
    }
  });

  function link(eid) { return el('a', { href: `#/executions/${eid}`, class: 'mono', text: eid }); }

  function drawHead(d) {
    title.replaceChildren(`${d.path} `, el('span', { class: 'muted', text: d.version ? `v${d.version}` : '' }));
    status.replaceChildren(badge(d.status));
    const dur = elapsed(d.start_time, d.end_time, d.duration);
    facts.replaceChildren(
      el('span', {}, 'id ', el('span', { class: 'mono', text: d.execution_id })),
      el('span', { text: `started ${fmtDate(d.start_time)}` }),
      d.end_time ? el('span', { text: `ended ${fmtTime(d.end_time)}` }) : '',
      el('span', { 'data-testid': 'exec-duration', text: `duration ${fmtDuration(dur)}` }),
      d.parent_execution_id ? el('span', { 'data-testid': 'parent-link' }, 'parent ', link(d.parent_execution_id)) : '');
    cancelBtn.disabled = TERMINAL.has(d.status);
    const esig = JSON.stringify(d.error ?? null);
    if (esig !== errorSig) {
      errorSig = esig;
      const err = errorBlock(d.error, 'exec-error');
      errorBox.replaceChildren(...(err ? [err] : []));
    }
    // why steps wait, from the one explainer (noetl.engine.explain): the stuck ones up here
    const stuck = TERMINAL.has(d.status) ? []
      : Object.entries(d.steps || {}).filter(([, st]) => st.waiting && st.waiting.stuck);
    waitBox.replaceChildren(...stuck.map(([name, st]) => el('div', { class: 'waiting-box stuck',
      'data-testid': 'exec-waiting', 'data-step': name, 'data-reason': st.waiting.reason },
    el('strong', { text: `${name}: ` }), st.waiting.message)));
    const kids = d.children || [];
    childBox.hidden = !kids.length;
    if (kids.length) {
      childBox.replaceChildren(el('h3', { text: `Sub-playbook executions (${kids.length})` }),
        ...kids.map((c) => el('div', { 'data-testid': 'child' }, link(c.execution_id), ' ', badge(c.status),
          ' ', el('span', { class: 'muted', text: c.path || '' }))));
    }
  }

  function drawStep() {
    if (!selected || !desc) return;
    const s = (desc.steps || {})[selected];
    const node = lastGraph?.nodes.find((n) => n.name === selected);
    if (!s && !node) return;
    const st = s || { status: node.status };
    const loop = st.loop || node?.loop;
    // redraw only on change, so scroll positions and text selections inside survive polling
    const sig = JSON.stringify([selected, st, loop, Boolean(source), st.ended_at ? 0 : Math.floor(Date.now() / 1000)]);
    if (sig === stepSig) return;
    stepSig = sig;
    const dl = el('dl', {},
      el('dt', { text: 'status' }), el('dd', {}, badge(st.status)),
      el('dt', { text: 'type' }), el('dd', { text: st.type || node?.type || '' }),
      el('dt', { text: 'attempts' }), el('dd', { 'data-testid': 'step-attempts', text: st.attempts ?? 0 }),
      el('dt', { text: 'runs' }), el('dd', { text: st.runs ?? 0 }),
      el('dt', { text: 'started' }), el('dd', { text: fmtDate(st.started_at) }),
      el('dt', { text: 'ended' }), el('dd', { text: fmtDate(st.ended_at) }),
      el('dt', { text: 'duration' }), el('dd', { 'data-testid': 'step-duration',
        text: fmtDuration(elapsed(st.started_at, st.ended_at, st.duration)) }),
      loop ? el('dt', { text: 'loop' }) : null,
      loop ? el('dd', { 'data-testid': 'step-loop', text: `${loop.done ?? 0} / ${loop.total ?? 0}${
        loop.failed ? ' · stopped: an item failed' : ''}` }) : null);
    const why = desc && !TERMINAL.has(desc.status) ? st.waiting : null;
    stepBox.replaceChildren(
      el('div', { class: 'row' }, el('h3', { 'data-testid': 'step-name', text: selected })),
      why ? el('div', { class: `waiting-box${why.stuck ? ' stuck' : ''}`, 'data-testid': 'step-waiting',
        'data-reason': why.reason, text: why.message }) : '',
      dl,
      errorBlock(st.error, 'step-error') || '',
      ...section('input (edge arguments)', st.input, 'step-input'),
      ...section('result', st.result, 'step-result'));
    const isLoop = Boolean(loop) || node?.type === 'iterator' || st.type === 'iterator';
    if (isLoop) {
      if (!items || items.step !== selected) {
        items = new LoopItems(id, selected);
        items.refresh();
      }
      stepBox.append(items.root);
    } else {
      items = null;
    }
    const def = source && stepBlock(source, selected);
    if (def) stepBox.append(el('h4', { text: 'definition' }), highlightYaml(def, 'step-definition'));
  }

  function selectStep(name) {
    selected = name;
    logPanel.select(name);
    if (updateGraph && lastGraph) updateGraph(lastGraph, selected);
    drawStep();
  }

  function showEvent(e) {
    eventBox.hidden = false;
    eventBox.replaceChildren(
      el('div', { class: 'row' }, el('h3', { text: `Event ${e.seq ?? ''} · ${e.event_type}` }),
        el('span', { class: 'spacer' }), el('button', { text: '×', onclick: () => { eventBox.hidden = true; } })),
      el('div', { class: 'muted', text: `${e.node_name || ''} ${e.status || ''} · ${fmtDate(e.created_at)}` }),
      e.error ? errorBlock({ message: e.error, type: e.error_type, traceback: e.stack_trace }, 'event-error') : '',
      ...section('result', e.result ?? undefined, 'event-result'),
      ...section('context', e.context ?? undefined, 'event-context'),
      ...section('event', { event_id: e.event_id, attempt: e.attempt, current_index: e.current_index,
        worker_id: e.worker_id, duration: e.duration }, 'event-meta'));
    if (e.node_name && e.node_name !== selected && lastGraph?.nodes.some((n) => n.name === e.node_name)) {
      selectStep(e.node_name);
    }
  }

  function drawGraphOnce(g) {
    lastGraph = g;
    const key = shapeKey(g);
    if (key !== graphKey) {
      graphKey = key;
      updateGraph = drawGraph(graphHost, g, selectStep);
    }
    updateGraph(g, selected);
  }

  async function pullEvents() {
    for (;;) {
      const data = await get(`/api/executions/${id}/events?since_seq=${lastSeq}&limit=${EVENT_PAGE}`);
      if (!alive) return;
      const items = Array.isArray(data) ? data : (data.items || data.events || []);
      timeline.append(items);
      const seqs = items.map((e) => Number(e.seq)).filter(Number.isFinite);
      lastSeq = Math.max(lastSeq, Number(data.last_seq ?? 0) || 0, ...seqs);
      if (items.length < EVENT_PAGE) return;
    }
  }

  async function tick() {
    let d;
    let g;
    try {
      // status and graph from one read: a finished status never comes with an older graph
      ({ execution: d, graph: g } = await get(`/api/executions/${id}/snapshot`));
    } catch (e) {
      if (!alive) return false;
      errorSig = 'load-error';
      errorBox.replaceChildren(el('div', { class: 'error-box', text: `Cannot load execution ${id}: ${e.message}` }));
      return e.status !== 404;
    }
    if (!alive) return false;
    if (!desc && d.catalog_id) {
      post('/api/catalog/resource', { catalog_id: d.catalog_id })
        .then((entry) => { source = entry.content; drawStep(); })
        .catch((e) => console.warn('playbook source', e));
    }
    desc = d;
    drawHead(d);
    drawGraphOnce(g);
    drawStep();
    lineage.update(d.status);
    await logPanel.pull().catch((e) => console.warn('logs', e));
    await pullEvents();
    if (items && alive) await items.refresh();
    // events are written in the same transaction as the status: once terminal, all are here;
    // stop only when the status and the graph both say the execution has ended
    return alive && !(TERMINAL.has(d.status) && TERMINAL.has(g.status));
  }

  const p = poll(tick, 1000);
  return () => { alive = false; p.stop(); };
}
