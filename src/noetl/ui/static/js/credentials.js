// Credentials: names, types and dates only. The API never sends values and this page
// shows none of the other fields it might receive.
import { get } from './api.js';
import { el, fmtDate, listOf } from './util.js';

export function renderCredentials(view) {
  const box = el('div', { 'data-testid': 'credentials' }, el('p', { class: 'muted', text: 'Loading…' }));
  view.append(el('h2', { text: 'Credentials' }), box);
  (async () => {
    let items;
    try {
      items = listOf(await get('/api/credentials'), 'credentials');
    } catch (e) {
      box.replaceChildren(el('div', { class: 'error-box', text: `Cannot list credentials: ${e.message}` }));
      return;
    }
    if (!items.length) {
      box.replaceChildren(el('p', { class: 'muted',
        text: 'No credentials. Add one with: noetl credential add NAME --type TYPE --data JSON' }));
      return;
    }
    box.replaceChildren(el('table', { class: 'grid' },
      el('thead', {}, el('tr', {}, ['Name', 'Type', 'Description', 'Tags', 'Created', 'Updated']
        .map((h) => el('th', { text: h })))),
      el('tbody', {}, items.map((c) => el('tr', { 'data-testid': 'credential-row' },
        el('td', { class: 'mono', text: c.name }), el('td', { text: c.type || '' }),
        el('td', { text: c.description || '' }),
        el('td', { text: Array.isArray(c.tags) ? c.tags.join(', ') : '' }),
        el('td', { text: fmtDate(c.created_at) }), el('td', { text: fmtDate(c.updated_at) }))))));
  })();
}
