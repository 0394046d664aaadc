// Hash router: #/catalog, #/executions, #/executions/<id>, #/schedules, #/credentials,
// #/workers.
import { renderCatalog } from './catalog.js';
import { renderCredentials } from './credentials.js';
import { renderExecution } from './execution.js';
import { renderExecutions } from './executions.js';
import { renderSchedules } from './schedules.js';
import { renderWorkers } from './workers.js';
import { clear, el } from './util.js';

let cleanup = null;

export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, qs = ''] = raw.split('?');
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: Object.fromEntries(new URLSearchParams(qs)) };
}

export function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

function route() {
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  const view = clear(document.getElementById('view'));
  const { parts, params } = parseHash();
  const page = parts[0] || 'catalog';
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === page);
  }
  let result;
  if (page === 'catalog') result = renderCatalog(view, params);
  else if (page === 'executions' && parts[1]) result = renderExecution(view, parts[1]);
  else if (page === 'executions') result = renderExecutions(view, params);
  else if (page === 'schedules') result = renderSchedules(view, params);
  else if (page === 'credentials') result = renderCredentials(view);
  else if (page === 'workers') result = renderWorkers(view);
  else view.append(el('p', { text: `No page "${page}".` }));
  cleanup = typeof result === 'function' ? result : null;
  document.title = `NoETL · ${page}`;
}

window.addEventListener('hashchange', route);
route();
