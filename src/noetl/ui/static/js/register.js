// The Catalog page's "Register playbook" form: YAML pasted into the text area, or read from a
// chosen (or dropped) .yaml file, sent to POST /api/catalog/register. A refused playbook shows
// the API's problem list, one row per problem: where in the text (file and line), the source
// line itself, the message and its "did you mean". A registered one is handed to onRegistered
// with the API's answer (path, version, catalog id, warnings).
import { post } from './api.js';
import { el } from './util.js';

// "(did you mean 'next'?)" (keys, steps) or "; did you mean 'MON'?" (cron fields).
const HINT = /(?:\s*\(|;\s*)did you mean '([^']*)'\?\)?/;

export function splitHint(message) {
  const text = String(message ?? '');
  const m = HINT.exec(text);
  return m ? { text: text.replace(HINT, ''), hint: m[1] } : { text, hint: null };
}

// Character range of 1-based line `n` in `text` (clamped to the text).
function lineRange(text, n) {
  let start = 0;
  for (let i = 1; i < n; i += 1) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return [text.length, text.length];
    start = nl + 1;
  }
  const end = text.indexOf('\n', start);
  return [start, end < 0 ? text.length : end];
}

// One problem (error or warning) of `text`, as `source` names it; `jump(line)` shows the line.
export function problemItem(p, text, source, jump) {
  const { text: message, hint } = splitHint(p.message);
  const line = Number(p.line) || null;
  const at = line ? `${source}, line ${line}` : source;
  const lines = text.split('\n');
  const code = line && line <= lines.length ? lines[line - 1] : null;
  return el('li', { class: `problem ${p.severity === 'warning' ? 'warn' : 'bad'}`,
    'data-testid': 'register-problem', 'data-line': line ?? '', 'data-severity': p.severity || 'error' },
  el('div', { class: 'row' },
    line && jump
      ? el('button', { class: 'linkish', 'data-testid': 'problem-line', title: 'Show this line in the text',
        onclick: () => jump(line), text: at })
      : el('span', { class: 'where-at', 'data-testid': 'problem-line', text: at }),
    p.where ? el('span', { class: 'mono where', 'data-testid': 'problem-where', text: p.where }) : null),
  code !== null ? el('pre', { class: 'src', 'data-testid': 'problem-source' },
    el('span', { class: 'no', text: String(line) }), code) : null,
  el('div', {}, el('span', { 'data-testid': 'problem-message', text: message }),
    hint !== null ? el('span', { class: 'hint', 'data-testid': 'problem-hint' },
      ' — did you mean ', el('code', { text: hint }), '?') : null));
}

export function problemList(problems, text, source, jump) {
  return el('ul', { class: 'problems', 'data-testid': 'register-problems' },
    problems.map((p) => problemItem(p, text, source, jump)));
}

export function registerForm({ onRegistered, onCancel }) {
  let fileName = null;
  let edited = false;
  const yaml = el('textarea', { 'data-testid': 'register-yaml', spellcheck: 'false', rows: 16,
    placeholder: 'apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: ..., path: ...}\nworkflow:\n'
      + '  - step: start\n    ...' });
  const file = el('input', { type: 'file', 'data-testid': 'register-file',
    accept: '.yaml,.yml,application/yaml,application/x-yaml,text/yaml,text/plain' });
  const fileNote = el('span', { class: 'muted', 'data-testid': 'register-file-note' });
  const msg = el('div', { 'data-testid': 'register-message' });
  const submit = el('button', { class: 'primary', 'data-testid': 'register-submit', text: 'Register' });
  const source = () => (fileName ? `${fileName}${edited ? ' (edited)' : ''}` : 'pasted YAML');

  function jump(line) {
    const [a, b] = lineRange(yaml.value, line);
    yaml.focus();
    yaml.setSelectionRange(a, b);
    const lh = parseFloat(getComputedStyle(yaml).lineHeight) || 18;
    yaml.scrollTop = Math.max(0, (line - 3) * lh);
  }

  async function load(f) {
    if (!f) return;
    msg.replaceChildren();
    try {
      yaml.value = await f.text();
    } catch (e) {
      msg.append(el('div', { class: 'error-box', text: `Cannot read ${f.name}: ${e.message}` }));
      return;
    }
    fileName = f.name;
    edited = false;
    const n = yaml.value ? yaml.value.split('\n').length - (yaml.value.endsWith('\n') ? 1 : 0) : 0;
    fileNote.textContent = `${f.name}: ${n} line${n === 1 ? '' : 's'} loaded below`;
  }
  file.addEventListener('change', () => load(file.files[0]));
  yaml.addEventListener('input', () => { edited = true; });
  yaml.addEventListener('dragover', (ev) => ev.preventDefault());
  yaml.addEventListener('drop', (ev) => {
    if (!ev.dataTransfer?.files?.length) return;
    ev.preventDefault();
    load(ev.dataTransfer.files[0]);
  });

  submit.addEventListener('click', async () => {
    msg.replaceChildren();
    const text = yaml.value;
    const from = source();
    submit.disabled = true;
    try {
      const res = await post('/api/catalog/register', { content: text });
      onRegistered(res, text, from);
    } catch (e) {
      const problems = Array.isArray(e.body?.problems) ? e.body.problems : [];
      if (problems.length) {
        const n = problems.filter((p) => p.severity !== 'warning').length;
        msg.append(el('div', { class: 'error-box refused', 'data-testid': 'register-refused' },
          el('div', { class: 'error-where', text: `Not registered: ${from} has ${n} problem${
            n === 1 ? '' : 's'}. Fix ${n === 1 ? 'it' : 'them'} and register again.` }),
          problemList(problems, text, from, jump)));
      } else {
        msg.append(el('div', { class: 'error-box', 'data-testid': 'register-refused',
          text: `Not registered: ${e.message}` }));
      }
    } finally {
      submit.disabled = false;
    }
  });

  const form = el('div', { class: 'panel register-form', 'data-testid': 'register-form' },
    el('div', { class: 'row' }, el('h3', { text: 'Register a playbook' }), el('span', { class: 'spacer' }),
      el('button', { 'data-testid': 'register-cancel', text: 'Close', onclick: onCancel })),
    el('div', { class: 'muted', text: 'Paste its YAML below, or choose (or drop) a .yaml file. Its '
      + 'metadata.path names it; registering a path again adds a version.' }),
    el('div', { class: 'row' }, el('label', {}, 'File: ', file), fileNote),
    yaml,
    el('div', { class: 'row' }, submit), msg);
  return { form, focus: () => yaml.focus() };
}
