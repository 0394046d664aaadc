// Zoom, pan, fit and a minimap for the step graph, and the running step kept in view.
// The graph is drawn once in graph coordinates inside <g class="viewport">; this only changes
// that group's transform. Wheel zooms at the pointer, dragging the background pans, the
// minimap (shown while part of the graph is out of view) moves the view where it is clicked.

const NS = 'http://www.w3.org/2000/svg';
const MIN_K = 0.1;
const MAX_K = 3;
const MARGIN = 16;
const MM_W = 180; // minimap box, at most
const MM_H = 120;

function svgEl(tag, attrs = {}) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}

function button(label, title, testid, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.title = title;
  b.setAttribute('data-testid', testid);
  b.addEventListener('click', onclick);
  return b;
}

export class GraphView {
  // host: the panel; root: the <svg>; content: its <g> holding the graph; L: the layout
  // (width, height, xy of every node); nodeW/nodeH: the size of a step box.
  constructor(host, root, content, L, names, nodeW, nodeH) {
    this.host = host;
    this.root = root;
    this.content = content;
    this.L = L;
    this.nodeW = nodeW;
    this.nodeH = nodeH;
    this.k = 1;
    this.tx = 0;
    this.ty = 0;
    this.follow = true; // keep running steps in view until the user pans
    this.touched = false; // the user zoomed or panned: a resize no longer re-fits
    this.running = [];

    this.zoomLabel = document.createElement('span');
    this.zoomLabel.className = 'muted zoom-label';
    this.zoomLabel.setAttribute('data-testid', 'graph-zoom');
    this.followBtn = button('Follow', 'Keep the running step in view', 'graph-follow', () => {
      this.follow = !this.follow;
      this.sync();
      if (this.follow) this.reveal(true);
    });
    const tools = document.createElement('div');
    tools.className = 'graph-tools';
    tools.append(
      button('−', 'Zoom out', 'graph-zoom-out', () => this.zoomBy(1 / 1.25)),
      button('+', 'Zoom in', 'graph-zoom-in', () => this.zoomBy(1.25)),
      button('Fit', 'Show the whole graph', 'graph-fit', () => { this.touched = false; this.fit(); }),
      button('1:1', 'Actual size', 'graph-actual', () => this.zoomBy(1 / this.k)),
      this.followBtn, this.zoomLabel);

    this.mm = svgEl('svg', { class: 'minimap', 'data-testid': 'graph-minimap' });
    this.mmScale = Math.min(MM_W / L.width, MM_H / L.height, 1);
    this.mm.setAttribute('width', Math.ceil(L.width * this.mmScale));
    this.mm.setAttribute('height', Math.ceil(L.height * this.mmScale));
    this.mm.setAttribute('viewBox', `0 0 ${L.width} ${L.height}`);
    this.mmNodes = new Map();
    for (const name of names) {
      const p = L.xy.get(name);
      const r = svgEl('rect', { x: p.x, y: p.y, width: nodeW, height: nodeH, rx: 6,
        class: 'mm-node', 'data-name': name });
      this.mm.append(r);
      this.mmNodes.set(name, r);
    }
    this.mmView = svgEl('rect', { class: 'mm-view', 'data-testid': 'graph-minimap-view' });
    this.mm.append(this.mmView);

    const stage = document.createElement('div');
    stage.className = 'graph-stage';
    stage.setAttribute('data-testid', 'graph-stage');
    stage.append(root, this.mm);
    // as tall as the graph at 1:1, within [260 px, 62 % of the window]; the user can resize it
    stage.style.height = `${Math.round(Math.max(260, Math.min(L.height + 2 * MARGIN, window.innerHeight * 0.62)))}px`;
    this.stage = stage;
    host.replaceChildren(tools, stage);
    this.listen();
    this.fit();
    if (typeof ResizeObserver !== 'undefined') {
      this.resize = new ResizeObserver(() => { if (!this.touched) this.fit(); else this.apply(); });
      this.resize.observe(stage);
    }
  }

  size() {
    return { w: this.stage.clientWidth || 600, h: this.stage.clientHeight || 400 };
  }

  // The whole graph in view, never enlarged past 1:1; small graphs sit at the top, centred.
  fit() {
    const { w, h } = this.size();
    const k = Math.max(MIN_K, Math.min(1, (w - 2 * MARGIN) / this.L.width, (h - 2 * MARGIN) / this.L.height));
    this.k = k;
    this.tx = (w - this.L.width * k) / 2;
    this.ty = Math.max(MARGIN / 2, Math.min(MARGIN, (h - this.L.height * k) / 2));
    this.apply();
  }

  zoomBy(factor, cx, cy) {
    const { w, h } = this.size();
    const px = cx ?? w / 2;
    const py = cy ?? h / 2;
    const k = Math.max(MIN_K, Math.min(MAX_K, this.k * factor));
    // keep the graph point under (px, py) where it is
    this.tx = px - ((px - this.tx) * k) / this.k;
    this.ty = py - ((py - this.ty) * k) / this.k;
    this.k = k;
    this.touched = true;
    this.apply();
    if (this.follow) this.reveal(false);
  }

  // Centre the view on graph point (gx, gy).
  centre(gx, gy) {
    const { w, h } = this.size();
    this.tx = w / 2 - gx * this.k;
    this.ty = h / 2 - gy * this.k;
    this.apply();
  }

  apply() {
    this.content.setAttribute('transform', `translate(${this.tx.toFixed(1)},${this.ty.toFixed(1)}) scale(${this.k.toFixed(4)})`);
    this.root.setAttribute('data-zoom', this.k.toFixed(3));
    this.zoomLabel.textContent = `${Math.round(this.k * 100)}%`;
    const { w, h } = this.size();
    const vx = -this.tx / this.k;
    const vy = -this.ty / this.k;
    const vw = w / this.k;
    const vh = h / this.k;
    this.mmView.setAttribute('x', vx);
    this.mmView.setAttribute('y', vy);
    this.mmView.setAttribute('width', vw);
    this.mmView.setAttribute('height', vh);
    const whole = vx <= 1 && vy <= 1 && vx + vw >= this.L.width - 1 && vy + vh >= this.L.height - 1;
    this.mm.classList.toggle('hidden', whole);
    this.mm.setAttribute('data-visible', whole ? 'false' : 'true');
    this.sync();
  }

  sync() {
    this.followBtn.classList.toggle('on', this.follow);
    this.followBtn.setAttribute('aria-pressed', String(this.follow));
  }

  // Is a node's box inside the visible part of the panel (not under the minimap)?
  visible(name) {
    const p = this.L.xy.get(name);
    if (!p) return true;
    const { w, h } = this.size();
    const x1 = this.tx + p.x * this.k;
    const y1 = this.ty + p.y * this.k;
    const x2 = x1 + this.nodeW * this.k;
    const y2 = y1 + this.nodeH * this.k;
    if (x1 < 0 || y1 < 0 || x2 > w || y2 > h) return false;
    if (this.mm.classList.contains('hidden')) return true;
    const mw = Number(this.mm.getAttribute('width')) + 12;
    const mh = Number(this.mm.getAttribute('height')) + 12;
    return x2 < w - mw || y2 < h - mh;
  }

  // Bring the running steps into view (all of them if they fit, else the first).
  reveal(force) {
    const out = this.running.filter((n) => !this.visible(n));
    if (!out.length && !force) return;
    const pts = (out.length ? out : this.running).map((n) => this.L.xy.get(n)).filter(Boolean);
    if (!pts.length) return;
    const x1 = Math.min(...pts.map((p) => p.x));
    const y1 = Math.min(...pts.map((p) => p.y));
    const x2 = Math.max(...pts.map((p) => p.x + this.nodeW));
    const y2 = Math.max(...pts.map((p) => p.y + this.nodeH));
    const { w, h } = this.size();
    if ((x2 - x1) * this.k <= w - 2 * MARGIN && (y2 - y1) * this.k <= h - 2 * MARGIN) {
      this.centre((x1 + x2) / 2, (y1 + y2) / 2);
    } else {
      this.centre(pts[0].x + this.nodeW / 2, pts[0].y + this.nodeH / 2);
    }
  }

  // Live statuses: minimap colours, and follow the running steps.
  update(nodes) {
    this.running = [];
    for (const n of nodes) {
      const status = String(n.status || 'PENDING').toUpperCase();
      const r = this.mmNodes.get(n.name);
      if (r) r.setAttribute('class', `mm-node s-${status}`);
      if (status === 'RUNNING') this.running.push(n.name);
    }
    if (this.follow) this.reveal(false);
  }

  listen() {
    this.stage.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const box = this.stage.getBoundingClientRect();
      this.zoomBy(Math.exp(-ev.deltaY * 0.0015), ev.clientX - box.left, ev.clientY - box.top);
    }, { passive: false });
    let drag = null;
    this.root.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 || ev.target.closest('.node')) return;
      drag = { x: ev.clientX, y: ev.clientY, tx: this.tx, ty: this.ty, moved: false };
      this.root.setPointerCapture?.(ev.pointerId);
    });
    this.root.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x;
      const dy = ev.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 3) return;
      drag.moved = true;
      this.root.classList.add('panning');
      this.tx = drag.tx + dx;
      this.ty = drag.ty + dy;
      this.touched = true;
      this.follow = false; // the user looks elsewhere: stop following
      this.apply();
    });
    const end = () => { drag = null; this.root.classList.remove('panning'); };
    this.root.addEventListener('pointerup', end);
    this.root.addEventListener('pointercancel', end);
    const jump = (ev) => {
      const box = this.mm.getBoundingClientRect();
      const gx = (ev.clientX - box.left) / this.mmScale;
      const gy = (ev.clientY - box.top) / this.mmScale;
      this.touched = true;
      this.follow = false;
      this.centre(gx, gy);
    };
    this.mm.addEventListener('pointerdown', (ev) => {
      ev.preventDefault();
      jump(ev);
      const move = (e) => jump(e);
      const up = () => { window.removeEventListener('pointermove', move); window.removeEventListener('pointerup', up); };
      window.addEventListener('pointermove', move);
      window.addEventListener('pointerup', up);
    });
  }

  destroy() { this.resize?.disconnect(); }
}
