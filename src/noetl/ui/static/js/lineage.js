// An execution's inputs and lineage (re-run of / resumed from, and the executions made from
// it), and the Re-run and Resume buttons, which ask for optional overrides (JSON) first.
import { get, post } from './api.js';
import { badge, el, pretty, toast } from './util.js';

const RESUMABLE = new Set(['FAILED', 'CANCELLED']);

function link(eid) { return el('a', { href: `#/executions/${eid}`, class: 'mono', text: eid }); }

export class Lineage {
  constructor(executionId) {
    this.id = executionId;
    this.status = null;
    this.rerunBtn = el('button', { 'data-testid': 'rerun-button', text: 'Re-run',
      title: 'Run this playbook version again with the same inputs' });
    this.resumeBtn = el('button', { 'data-testid': 'resume-button', text: 'Resume', disabled: true,
      title: 'Reuse the steps that completed; run the failed and cancelled ones again' });
    this.root = el('div', { class: 'panel lineage', 'data-testid': 'lineage', hidden: true });
    this.dialog = this.makeDialog();
    this.buttons = el('span', { class: 'row' }, this.rerunBtn, this.resumeBtn, this.dialog);
    this.rerunBtn.addEventListener('click', () => this.ask('rerun'));
    this.resumeBtn.addEventListener('click', () => this.ask('resume'));
  }

  makeDialog() {
    this.dlgTitle = el('h3');
    this.dlgHelp = el('p', { class: 'muted' });
    this.overrides = el('textarea', { 'data-testid': 'overrides-input', rows: 5, spellcheck: 'false' });
    this.merge = el('input', { type: 'checkbox', 'data-testid': 'overrides-merge' });
    this.dlgError = el('div', { class: 'error-box', 'data-testid': 'overrides-error', hidden: true });
    this.startBtn = el('button', { class: 'primary', 'data-testid': 'overrides-start', text: 'Start' });
    const cancel = el('button', { type: 'button', text: 'Cancel', onclick: () => this.dialog.close() });
    const dlg = el('dialog', { 'data-testid': 'overrides-dialog', class: 'overrides' },
      this.dlgTitle, this.dlgHelp, this.overrides,
      el('label', { class: 'row' }, this.merge, 'deep-merge the overrides'), this.dlgError,
      el('div', { class: 'row' }, this.startBtn, cancel));
    this.startBtn.addEventListener('click', () => this.start());
    return dlg;
  }

  ask(kind) {
    this.kind = kind;
    this.dlgTitle.textContent = kind === 'resume' ? `Resume execution ${this.id}` : `Re-run execution ${this.id}`;
    this.dlgHelp.textContent = kind === 'resume'
      ? 'Steps that completed are reused, not run again. Overrides (JSON object) go over the workload.'
      : 'Same playbook version, same inputs. Overrides (JSON object) go over the inputs.';
    this.overrides.value = '{}';
    this.dlgError.hidden = true;
    this.dialog.showModal();
    this.overrides.focus();
  }

  async start() {
    let args;
    try {
      args = JSON.parse(this.overrides.value.trim() || '{}');
      if (!args || typeof args !== 'object' || Array.isArray(args)) throw new Error('overrides must be a JSON object');
    } catch (e) {
      this.dlgError.hidden = false;
      this.dlgError.textContent = `Overrides: ${e.message}`;
      return;
    }
    this.startBtn.disabled = true;
    try {
      const out = await post(`/api/executions/${this.id}/${this.kind}`, { args, merge: this.merge.checked });
      this.dialog.close();
      toast(`${this.kind === 'resume' ? 'Resumed' : 'Re-ran'} as execution ${out.execution_id}`);
      window.location.hash = `#/executions/${out.execution_id}`;
    } catch (e) {
      this.dlgError.hidden = false;
      this.dlgError.textContent = e.message;
    } finally {
      this.startBtn.disabled = false;
    }
  }

  // Called on every poll with the execution's status; reloads the lineage when it changes.
  update(status) {
    this.resumeBtn.disabled = !RESUMABLE.has(status);
    if (status !== this.status) {
      this.status = status;
      this.load().catch((e) => console.warn('lineage', e));
    }
  }

  async load() {
    const d = await get(`/api/executions/${this.id}/lineage`);
    const parts = [];
    const o = d.origin;
    if (o) {
      parts.push(el('div', { 'data-testid': 'lineage-origin', 'data-kind': o.kind },
        o.kind === 'resume' ? 'resumed from ' : 're-run of ', link(o.source_execution_id), ' ',
        o.source_status ? badge(o.source_status) : '',
        o.overrides ? el('span', { class: 'muted' }, ' with ', el('code', { text: JSON.stringify(o.overrides) })) : '',
        o.reused?.length ? el('div', { class: 'muted', 'data-testid': 'lineage-reused',
          text: `reused ${o.reused.length} step${o.reused.length === 1 ? '' : 's'}: ${o.reused.join(', ')}` }) : ''));
    }
    for (const x of d.derived || []) {
      parts.push(el('div', { 'data-testid': 'lineage-derived', 'data-kind': x.kind },
        x.kind === 'resume' ? 'resumed as ' : 're-run as ', link(x.execution_id), ' ', badge(x.status)));
    }
    const inp = d.inputs || {};
    const inputs = el('details', { 'data-testid': 'exec-inputs', open: !o && !(d.derived || []).length },
      el('summary', {}, 'inputs', el('span', { class: 'muted', text: inp.args ? ` (args: ${Object.keys(inp.args).join(', ')})` : ' (no args: the playbook\'s workload)' })),
      el('h4', { text: 'args' }), el('pre', { 'data-testid': 'exec-args', text: inp.args ? pretty(inp.args) : '—' }),
      el('h4', { text: 'workload' }), el('pre', { 'data-testid': 'exec-workload', text: pretty(inp.workload ?? {}) }));
    this.root.replaceChildren(el('h3', { text: 'Inputs and lineage' }), ...parts, inputs);
    this.root.hidden = false;
  }
}
