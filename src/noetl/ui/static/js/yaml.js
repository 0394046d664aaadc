// A small line-based YAML highlighter: keys, scalars, comments, Jinja templates and block
// scalars. Produces DOM nodes (never innerHTML), one <span class="ln"> per line.
import { el } from './util.js';

const TPL = /(\{\{.*?\}\}|\{%.*?%\})/g;
const NUM = /^[-+]?(\d[\d_]*(\.\d*)?([eE][-+]?\d+)?|\.\d+|0x[0-9a-fA-F]+)$/;
const BOOL = /^(true|false|yes|no|on|off|null|~|True|False|Null|NULL|TRUE|FALSE)$/;

function withTemplates(text, cls) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(TPL)) {
    if (m.index > last) out.push(el('span', { class: cls, text: text.slice(last, m.index) }));
    out.push(el('span', { class: 'y-tpl', text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(el('span', { class: cls, text: text.slice(last) }));
  return out;
}

// Index of a comment start (" #" outside quotes), or -1.
function commentAt(s) {
  let q = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) { if (c === q && s[i - 1] !== '\\') q = null; continue; }
    if (c === '"' || c === "'") { if (i === 0 || /[\s:[{,-]/.test(s[i - 1])) q = c; continue; }
    if (c === '#' && (i === 0 || /\s/.test(s[i - 1]))) return i;
  }
  return -1;
}

function scalar(text) {
  const t = text.trim();
  if (!t) return [text];
  const lead = text.slice(0, text.indexOf(t));
  const tail = text.slice(lead.length + t.length);
  let cls = 'y-str';
  if (NUM.test(t)) cls = 'y-num';
  else if (BOOL.test(t)) cls = 'y-bool';
  else if (/^[|>][-+0-9]*$/.test(t)) cls = 'y-punct';
  else if (/^[[\]{},]+$/.test(t)) cls = 'y-punct';
  return [lead, ...withTemplates(t, cls), tail];
}

// Key at the start of `s` ("name:" followed by space or end), quoted or plain.
const KEY = /^((?:"[^"]*"|'[^']*'|[^\s#'"{[][^:#]*?))(\s*:)(?=\s|$)/;

function content(s) {
  const out = [];
  let rest = s;
  // list dashes
  for (;;) {
    const m = /^(\s*)(- )/.exec(rest) || /^(\s*)(-)$/.exec(rest);
    if (!m) break;
    out.push(m[1], el('span', { class: 'y-punct', text: m[2] }));
    rest = rest.slice(m[0].length);
  }
  const lead = /^\s*/.exec(rest)[0];
  if (lead) { out.push(lead); rest = rest.slice(lead.length); }
  const k = KEY.exec(rest);
  if (k) {
    out.push(el('span', { class: 'y-key', text: k[1] }), el('span', { class: 'y-punct', text: k[2] }));
    rest = rest.slice(k[0].length);
  }
  if (rest) out.push(...scalar(rest));
  return out;
}

export function highlightYaml(text, testid = 'yaml') {
  const pre = el('pre', { class: 'yaml', 'data-testid': testid });
  let blockIndent = -1; // > -1 while inside a block scalar: lines indented deeper belong to it
  for (const line of String(text ?? '').replace(/\r\n?/g, '\n').split('\n')) {
    const indent = /^\s*/.exec(line)[0].length;
    const span = el('span', { class: 'ln' });
    if (blockIndent >= 0 && (line.trim() === '' || indent > blockIndent)) {
      span.append(...withTemplates(line, 'y-block'));
      pre.append(span);
      continue;
    }
    blockIndent = -1;
    if (/^(---|\.\.\.)\s*$/.test(line)) {
      span.append(el('span', { class: 'y-doc', text: line }));
    } else {
      const c = commentAt(line);
      const code = c >= 0 ? line.slice(0, c) : line;
      span.append(...content(code));
      if (c >= 0) span.append(el('span', { class: 'y-comment', text: line.slice(c) }));
      if (/(:|^\s*-)\s+[|>][-+0-9]*\s*$/.test(code) || /^\s*[|>][-+0-9]*\s*$/.test(code)) {
        // block lines are those indented deeper than the key (or than the dash of "- |")
        const keyCol = /^(\s*(?:-\s+)*)/.exec(code)[0].length;
        blockIndent = /^\s*-\s+[|>]/.test(code) ? indent : keyCol;
      }
    }
    pre.append(span);
  }
  return pre;
}

// The lines of one workflow step ("- step: NAME" and everything indented under it), dedented;
// null when the step is not written in block style. Edges ("next: - step: NAME") look the
// same but sit deeper, so the least indented match is the step itself.
export function stepBlock(text, name) {
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const head = new RegExp(`^(\\s*)-\\s+step:\\s*(["']?)${esc}\\2\\s*(#.*)?$`);
  let best = -1;
  let indent = Infinity;
  lines.forEach((l, i) => {
    const m = head.exec(l);
    if (m && m[1].length < indent) { best = i; indent = m[1].length; }
  });
  if (best < 0) return null;
  const depth = (l) => /^\s*/.exec(l)[0].length;
  let j = best + 1;
  while (j < lines.length && (lines[j].trim() === '' || depth(lines[j]) > indent)) j++;
  while (j > best + 1 && lines[j - 1].trim() === '') j--;
  return lines.slice(best, j).map((l) => l.slice(Math.min(indent, depth(l)))).join('\n');
}
