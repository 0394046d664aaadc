// Catalog: playbooks and their versions, the YAML of one version, a Run form, and the
// "Register playbook" form (register.js).
import { get, getToken, post } from './api.js';
import { problemList, registerForm } from './register.js';
import { highlightYaml } from './yaml.js';
import { clear, el, errorText, fmtDate, listOf, pretty } from './util.js';

function groupByPath(entries) {
  const by = new Map();
  for (const e of entries) {
    const g = by.get(e.path) || { path: e.path, kind: e.kind, versions: [] };
    g.versions.push(e);
    by.set(e.path, g);
  }
  for (const g of by.values()) {
    g.versions.sort((a, b) => Number(b.version) - Number(a.version));
    g.latest = g.versions[0];
  }
  return [...by.values()].sort((a, b) => a.path.localeCompare(b.path));
}

const catalogUrl = (path) => `/api/catalog/${path.split('/').map(encodeURIComponent).join('/')}`;

export function renderCatalog(view, params) {
  let alive = true;
  let groups = [];
  let selected = params.path || null;
  const search = el('input', { type: 'search', placeholder: 'Search playbooks…', 'data-testid': 'catalog-search',
    value: params.q || '' });
  const listBox = el('div', { 'data-testid': 'catalog-list' });
  const detail = el('div', { class: 'detail', 'data-testid': 'catalog-detail' },
    el('div', { class: 'panel muted', text: 'Select a playbook.' }));
  const registerBox = el('div', { class: 'register-box', 'data-testid': 'register-box' });
  const openBtn = el('button', { class: 'primary', 'data-testid': 'register-open', text: 'Register playbook',
    onclick: () => (registerBox.querySelector('[data-testid=register-form]') ? closeRegister() : openRegister()) });
  view.append(
    el('div', { class: 'row page-head' }, el('h2', { text: 'Catalog' }), el('span', { class: 'spacer' }), openBtn),
    registerBox,
    el('div', { class: 'catalog' }, el('div', { class: 'panel list' }, search, listBox), detail));

  function closeRegister() { registerBox.replaceChildren(); }

  function openRegister() {
    const { form, focus } = registerForm({ onRegistered: registered, onCancel: closeRegister });
    registerBox.replaceChildren(form);
    focus();
  }

  // Registered: say what and which version (and any warnings), then open it.
  async function registered(res, text, from) {
    const warnings = Array.isArray(res.warnings) ? res.warnings : [];
    registerBox.replaceChildren(el('div', { class: 'panel register-done', 'data-testid': 'register-result',
      'data-path': res.path, 'data-version': res.version },
    el('div', { class: 'row' },
      el('span', {}, 'Registered ', el('b', { class: 'mono', text: res.path }), ` version ${res.version}`,
        el('span', { class: 'muted', text: ` (catalog id ${res.catalog_id}, from ${from})` })),
      el('span', { class: 'spacer' }),
      el('button', { 'data-testid': 'register-again', text: 'Register another', onclick: openRegister }),
      el('button', { 'data-testid': 'register-dismiss', text: 'Dismiss', onclick: closeRegister })),
    warnings.length ? el('div', { class: 'muted', text: `${warnings.length} warning${
      warnings.length === 1 ? '' : 's'} (registered anyway):` }) : null,
    warnings.length ? problemList(warnings, text, from, null) : null));
    await load();
    if (alive) select(res.path, res.version);
  }

  function drawEmpty() {
    const cmd = `noetl catalog register playbook.yaml --server ${location.origin}`;
    clear(detail).append(el('div', { class: 'panel empty-catalog', 'data-testid': 'catalog-empty' },
      el('h3', { text: 'No playbooks yet' }),
      el('p', {}, 'Register one to run it: paste its YAML or choose a .yaml file (for instance ',
        el('code', { text: 'examples/hello_world.yaml' }), ' of the NoETL repository).'),
      el('div', { class: 'row' }, el('button', { class: 'primary', 'data-testid': 'register-open-empty',
        text: 'Register playbook', onclick: openRegister })),
      el('p', { class: 'muted' }, 'Or from a shell:'),
      el('pre', { class: 'cmd', 'data-testid': 'register-cli', text: cmd }),
      getToken() ? el('p', { class: 'muted', text: 'This server asks for a token: set NOETL_API_TOKEN '
        + 'in that shell to the token this page uses.' }) : null));
  }

  function drawList() {
    clear(listBox);
    const q = search.value.trim().toLowerCase();
    const shown = groups.filter((g) => !q || g.path.toLowerCase().includes(q)
      || String(g.latest.meta?.name || '').toLowerCase().includes(q));
    if (!shown.length) listBox.append(el('div', { class: 'item muted', text: groups.length
      ? 'No playbook matches.' : 'The catalog is empty.' }));
    for (const g of shown) {
      listBox.append(el('div', {
        class: `item${g.path === selected ? ' sel' : ''}`, 'data-testid': 'catalog-item', 'data-path': g.path,
        onclick: () => select(g.path, null),
      }, el('div', { class: 'path', text: g.path }),
      el('div', { class: 'meta', text: `v${g.latest.version} · ${g.versions.length} version${
        g.versions.length === 1 ? '' : 's'} · ${g.kind || 'Playbook'} · ${fmtDate(g.latest.created_at)}` })));
    }
  }
  search.addEventListener('input', drawList);

  async function versionsOf(path) {
    try {
      const vs = listOf(await get(catalogUrl(path)), 'versions', 'entries');
      if (vs.length) return vs.sort((a, b) => Number(b.version) - Number(a.version));
    } catch (e) { console.warn('versions', e); }
    return groups.find((g) => g.path === path)?.versions || [];
  }

  async function select(path, version) {
    selected = path;
    drawList();
    const hash = `#/catalog?path=${encodeURIComponent(path)}${version ? `&version=${version}` : ''}`;
    history.replaceState(null, '', hash);
    clear(detail).append(el('div', { class: 'panel muted', text: `Loading ${path}…` }));
    let entry;
    let versions;
    try {
      [versions, entry] = await Promise.all([versionsOf(path),
        post('/api/catalog/resource', version ? { path, version: Number(version) } : { path })]);
    } catch (e) {
      if (alive) clear(detail).append(el('div', { class: 'error-box', text: `Cannot load ${path}: ${e.message}` }));
      return;
    }
    if (!alive || selected !== path) return;
    drawDetail(entry, versions);
  }

  function drawDetail(entry, versions) {
    const vsel = el('select', { 'data-testid': 'version-select', onchange: () => select(entry.path, vsel.value) },
      versions.map((v) => el('option', { value: v.version, selected: String(v.version) === String(entry.version),
        text: `v${v.version} — ${fmtDate(v.created_at)}` })));
    const workload = entry.payload?.workload;
    const args = el('textarea', { 'data-testid': 'run-args', spellcheck: 'false', rows: 6 });
    args.value = workload && typeof workload === 'object' ? pretty(workload) : '{}';
    const merge = el('input', { type: 'checkbox', 'data-testid': 'run-merge' });
    const msg = el('div', { 'data-testid': 'run-message' });
    const runBtn = el('button', { class: 'primary', 'data-testid': 'run-button', text: `Run v${entry.version}` });
    runBtn.addEventListener('click', async () => {
      clear(msg);
      let payload;
      try {
        payload = args.value.trim() ? JSON.parse(args.value) : {};
        if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
          throw new Error('workload overrides must be a JSON object');
        }
      } catch (e) {
        msg.append(el('div', { class: 'error-box', text: `Invalid JSON: ${e.message}` }));
        return;
      }
      runBtn.disabled = true;
      try {
        const res = await post('/api/run/playbook', { path: entry.path, version: Number(entry.version),
          args: payload, merge: merge.checked });
        const id = res.execution_id ?? res.id;
        location.hash = `#/executions/${id}`;
      } catch (e) {
        msg.append(el('div', { class: 'error-box', text: `Run failed: ${errorText(e.body?.detail) || e.message}` }));
      } finally {
        runBtn.disabled = false;
      }
    });
    clear(detail).append(
      el('div', { class: 'panel' },
        el('div', { class: 'row' }, el('h3', { text: entry.path }), el('span', { class: 'spacer' }),
          el('label', { class: 'muted', text: 'Version ' }), vsel),
        el('div', { class: 'muted', text: `catalog id ${entry.catalog_id} · ${entry.kind || 'Playbook'} · `
          + `registered ${fmtDate(entry.created_at)}` })),
      el('div', { class: 'panel run-form', 'data-testid': 'run-form' },
        el('h3', { text: 'Run' }),
        el('div', { class: 'muted', text: 'Workload overrides (JSON object):' }), args,
        el('div', { class: 'row' }, runBtn,
          el('label', {}, merge, ' deep-merge into the workload')), msg),
      el('div', { class: 'panel' }, el('h3', { text: 'Playbook' }), highlightYaml(entry.content)));
  }

  async function load() {
    try {
      groups = groupByPath(listOf(await post('/api/catalog/list', {}), 'entries'));
    } catch (e) {
      clear(listBox).append(el('div', { class: 'error-box', text: `Cannot list the catalog: ${e.message}` }));
      return false;
    }
    if (!alive) return false;
    drawList();
    return true;
  }

  (async () => {
    if (params.register) openRegister();
    if (!await load()) return;
    if (selected) select(selected, params.version || null);
    else if (!groups.length) drawEmpty();
  })();
  return () => { alive = false; };
}
