// The step graph as SVG: longest-path layering (top to bottom) over the graph with its back
// edges (loops back) removed, a few barycentre sweeps to reduce crossings, then bezier edges.
// The layout is computed once per graph shape; status updates only change classes and text.
// Zoom, pan, fit and the minimap are in graphview.js.
import { GraphView } from './graphview.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 168;
const H = 48;
const GAP_X = 34;
const GAP_Y = 64;
const PAD = 24;
const DW = 14; // width of the dummy nodes that carry long edges
const DGAP = 10;

function svg(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

export function shapeKey(g) {
  return JSON.stringify([g.nodes.map((n) => n.name), g.edges.map((e) => [e.from, e.to])]);
}

// Edges that close a cycle, found by depth-first search from the start step (then from any
// node not reached), in plan order so the result is stable.
function backEdges(names, out, start) {
  const state = new Map(); // 1 = on stack, 2 = done
  const back = new Set();
  const roots = [start, ...names].filter((n) => n !== undefined && out.has(n));
  for (const root of roots) {
    if (state.has(root)) continue;
    const stack = [[root, 0]];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const edges = out.get(top[0]);
      if (top[1] >= edges.length) { state.set(top[0], 2); stack.pop(); continue; }
      const e = edges[top[1]++];
      const s = state.get(e.to);
      if (s === 1) back.add(e);
      else if (s === undefined && out.has(e.to)) { state.set(e.to, 1); stack.push([e.to, 0]); }
    }
  }
  return back;
}

export function layout(graph) {
  const names = graph.nodes.map((n) => n.name);
  const out = new Map(names.map((n) => [n, []]));
  const edges = graph.edges.filter((e) => out.has(e.from) && out.has(e.to));
  for (const e of edges) out.get(e.from).push(e);
  const back = backEdges(names, out, graph.start);
  const fwd = edges.filter((e) => !back.has(e) && e.from !== e.to);

  // longest-path layering in topological order (Kahn)
  const fwdOut = new Map(names.map((n) => [n, []]));
  const indeg = new Map(names.map((n) => [n, 0]));
  for (const e of fwd) { fwdOut.get(e.from).push(e); indeg.set(e.to, indeg.get(e.to) + 1); }
  const layer = new Map(names.map((n) => [n, 0]));
  const queue = names.filter((n) => indeg.get(n) === 0);
  for (let qi = 0; qi < queue.length; qi++) {
    const n = queue[qi];
    for (const e of fwdOut.get(n)) {
      layer.set(e.to, Math.max(layer.get(e.to), layer.get(n) + 1));
      indeg.set(e.to, indeg.get(e.to) - 1);
      if (indeg.get(e.to) === 0) queue.push(e.to);
    }
  }

  // long edges get one small dummy node per layer they cross, so they are routed between
  // the steps instead of through them
  const layers = [];
  const width = new Map();
  const preds = new Map();
  const succs = new Map();
  const add = (id, l, w) => {
    (layers[l] ||= []).push(id);
    width.set(id, w);
    preds.set(id, []);
    succs.set(id, []);
  };
  for (const n of names) add(n, layer.get(n), W);
  const link = (a, b) => { succs.get(a).push(b); preds.get(b).push(a); };
  const chains = new Map();
  let dummies = 0;
  for (const e of fwd) {
    let prev = e.from;
    const chain = [];
    for (let l = layer.get(e.from) + 1; l < layer.get(e.to); l++) {
      const id = `\u0000${dummies++}`;
      add(id, l, DW);
      link(prev, id);
      chain.push(id);
      prev = id;
    }
    link(prev, e.to);
    chains.set(e, chain);
  }
  for (let i = 0; i < layers.length; i++) layers[i] ||= [];

  // barycentre ordering, alternating downward and upward sweeps
  const pos = new Map();
  layers.forEach((ids) => ids.forEach((n, i) => pos.set(n, i)));
  for (let sweep = 0; sweep < 8; sweep++) {
    const down = sweep % 2 === 0;
    const nb = down ? preds : succs;
    const order = layers.map((_, i) => (down ? i : layers.length - 1 - i));
    for (const li of order) {
      const bary = new Map(layers[li].map((n) => {
        const ps = nb.get(n).map((m) => pos.get(m));
        return [n, ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : pos.get(n)];
      }));
      layers[li].sort((a, b) => bary.get(a) - bary.get(b) || pos.get(a) - pos.get(b));
      layers[li].forEach((n, i) => pos.set(n, i));
    }
  }

  const gap = (a, b) => (width.get(a) === W && width.get(b) === W ? GAP_X : DGAP);
  const rowWidth = (ids) => ids.reduce((acc, id, i) => acc + width.get(id) + (i ? gap(ids[i - 1], id) : 0), 0);
  const widest = Math.max(W, ...layers.map(rowWidth));
  const xy = new Map();
  layers.forEach((ids, li) => {
    let x = PAD + (widest - rowWidth(ids)) / 2;
    ids.forEach((id, i) => {
      if (i) x += gap(ids[i - 1], id);
      xy.set(id, { x, y: PAD + li * (H + GAP_Y), w: width.get(id) });
      x += width.get(id);
    });
  });
  // room on the right for edges that go back up (and their labels)
  const right = Math.max(0, ...edges.filter((e) => back.has(e) || e.from === e.to)
    .map((e) => 56 + condLabel(e).length * 5.6));
  return { xy, back, edges, chains, width: PAD * 2 + widest + right,
    height: PAD * 2 + layers.length * H + Math.max(0, layers.length - 1) * GAP_Y };
}

function edgePath(L, e) {
  const a = L.xy.get(e.from);
  const b = L.xy.get(e.to);
  if (e.from === e.to) {
    // a step that loops to itself: a small arc on its right-hand side
    const x = a.x + W; const y = a.y;
    return { d: `M${x},${y + H * 0.3} C${x + 42},${y - 12} ${x + 42},${y + H + 12} ${x + 4},${y + H * 0.7}`,
      mx: x + 36, my: y + H / 2 + 3, anchor: 'start' };
  }
  if (L.back.has(e) || b.y <= a.y) {
    // around the right-hand side, from the source's right edge to the target's right edge
    const x1 = a.x + W; const y1 = a.y + H / 2;
    const x2 = b.x + W; const y2 = b.y + H / 2;
    const xr = Math.max(x1, x2) + 50;
    return { d: `M${x1},${y1} C${xr},${y1} ${xr},${y2} ${x2 + 4},${y2}`, mx: xr - 8, my: (y1 + y2) / 2,
      anchor: 'start' };
  }
  // down through the dummy nodes of the chain: curves between layers, straight inside them
  let x = a.x + W / 2;
  let y = a.y + H;
  let d = `M${x},${y}`;
  const curve = (x2, y2) => {
    const dy = Math.max(16, (y2 - y) / 2);
    d += ` C${x},${y + dy} ${x2},${y2 - dy} ${x2},${y2}`;
    x = x2; y = y2;
  };
  for (const id of L.chains.get(e) || []) {
    const p = L.xy.get(id);
    curve(p.x + p.w / 2, p.y);
    y = p.y + H;
    d += ` L${x},${y}`;
  }
  curve(b.x + W / 2, b.y - 4);
  // the condition label sits just above the target, where labels of sibling edges cannot collide
  return { d, mx: x, my: y - 16 };
}

function condLabel(e) {
  if (e.else) return 'else';
  if (!e.when) return '';
  const s = String(e.when).replace(/^\s*\{\{\s*/, '').replace(/\s*\}\}\s*$/, '');
  return s.length > 26 ? `${s.slice(0, 25)}…` : s;
}

function clip(s, n) { return s.length > n ? `${s.slice(0, n - 1)}…` : s; }

// Draw the graph into `host` (replacing its content). Returns update(graph, selected) for
// live status; update.view is its GraphView (zoom, pan, fit, minimap).
export function drawGraph(host, graph, onSelect) {
  const L = layout(graph);
  const root = svg('svg', { class: 'dag', 'data-testid': 'graph', 'data-width': Math.round(L.width),
    'data-height': Math.round(L.height) });
  const content = svg('g', { class: 'viewport', 'data-testid': 'graph-viewport' });
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#9aa3b2' }));
  defs.append(marker);
  root.append(defs, content);

  const edgeLayer = svg('g');
  const labelLayer = svg('g');
  for (const e of L.edges) {
    const p = edgePath(L, e);
    const path = svg('path', { class: `edge${L.back.has(e) ? ' back' : ''}`, d: p.d, 'marker-end': 'url(#arrow)',
      'data-from': e.from, 'data-to': e.to });
    path.append(svg('title', {}, `${e.from} → ${e.to}${e.when ? `  when ${e.when}` : ''}${e.else ? '  (else)' : ''}`));
    edgeLayer.append(path);
    const label = condLabel(e);
    if (label) {
      const w = label.length * 5.6 + 8;
      const x0 = p.anchor === 'start' ? p.mx - 4 : p.mx - w / 2;
      labelLayer.append(svg('rect', { class: 'elabel-bg', x: x0, y: p.my - 8, width: w, height: 14, rx: 3 }));
      const t = svg('text', { class: 'elabel', x: p.mx, y: p.my + 3, 'text-anchor': p.anchor || 'middle' }, label);
      t.append(svg('title', {}, e.when || 'else'));
      labelLayer.append(t);
    }
  }
  content.append(edgeLayer, labelLayer);

  const nodes = new Map();
  for (const n of graph.nodes) {
    const { x, y } = L.xy.get(n.name);
    const g = svg('g', { class: 'node', transform: `translate(${x},${y})`, 'data-testid': 'graph-node',
      'data-name': n.name, tabindex: 0 });
    const title = svg('title');
    const rect = svg('rect', { class: 'box', width: W, height: H, rx: 7 });
    const name = svg('text', { x: 10, y: 19, 'font-weight': 600 }, clip(n.name, 22));
    const sub = svg('text', { class: 'sub', x: 10, y: 36 });
    const count = svg('text', { class: 'sub count', x: W - 10, y: 19, 'text-anchor': 'end' });
    const barBg = svg('rect', { class: 'bar-bg', x: 10, y: H - 7, width: W - 20, height: 3, rx: 1.5 });
    const bar = svg('rect', { class: 'bar', x: 10, y: H - 7, width: 0, height: 3, rx: 1.5 });
    g.append(title, rect, name, sub, count);
    if (n.loop || n.type === 'iterator') g.append(barBg, bar);
    g.addEventListener('click', () => onSelect(n.name));
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') onSelect(n.name); });
    content.append(g);
    nodes.set(n.name, { g, title, sub, count, bar, barBg });
  }
  if (host.graphView) host.graphView.destroy();
  const view = new GraphView(host, root, content, L, graph.nodes.map((n) => n.name), W, H);
  host.graphView = view;

  function update(gr, selected) {
    for (const n of gr.nodes) {
      const v = nodes.get(n.name);
      if (!v) continue;
      const status = String(n.status || 'PENDING').toUpperCase();
      v.g.setAttribute('class', `node s-${status}${n.name === selected ? ' sel' : ''}`);
      v.g.setAttribute('data-status', status);
      const kind = n.type === 'iterator' ? `loop${n.task_type ? ` · ${n.task_type}` : ''}` : (n.type || 'router');
      v.sub.textContent = `${clip(kind, 16)}${n.is_join ? ' · join' : ''} · ${status.toLowerCase()}`;
      if (n.loop) {
        const { done = 0, total = 0 } = n.loop;
        v.count.textContent = `${done} / ${total}`;
        v.g.setAttribute('data-loop', `${done}/${total}`);
        if (!v.bar.isConnected) v.g.append(v.barBg, v.bar);
        v.bar.setAttribute('width', total ? ((W - 20) * Math.min(done, total)) / total : 0);
      } else {
        v.count.textContent = '';
      }
      v.title.textContent = `${n.name} (${kind}) — ${status}${n.loop ? `, ${n.loop.done} / ${n.loop.total}` : ''}`;
    }
    view.update(gr.nodes);
  }
  update(graph, null);
  update.view = view;
  return update;
}
