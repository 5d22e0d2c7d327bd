// Per-minute bar charts as inline SVG, drawn here (no library): one or two stacked series over
// time, a y axis from 0 to a round maximum, time labels under the bars, a title, and an
// aria-label that says what a sighted reader would take from the picture.
import { s } from './admin.ui.js';

const W = 320, H = 150, LEFT = 34, RIGHT = 6, TOP = 10, BOTTOM = 22, MAX_BARS = 60;

// 1, 2, 4, 6, 10, 20, 40, 60, 100…: the smallest at or above n, so that half of it (the middle
// grid line) is a whole count too.
function roundUp(n) {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 4, 6, 10].map((m) => m * p).find((v) => v >= n);
}
const hhmm = (iso) => new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

// At most MAX_BARS bars: a longer window sums neighbouring minutes into one bar.
function buckets(minutes, series) {
  const size = Math.ceil(minutes.length / MAX_BARS);
  const out = { minutes: [], values: series.map(() => []), size };
  for (let i = 0; i < minutes.length; i += size) {
    out.minutes.push(minutes[i]);
    series.forEach((v, k) => out.values[k].push(v.slice(i, i + size).reduce((a, b) => a + b, 0)));
  }
  return out;
}

// series: [{name, values, cls}] stacked bottom up. Returns the <svg>, with data-total per series.
export function barChart(title, minutes, series) {
  const b = buckets(minutes, series.map((x) => x.values));
  const n = b.minutes.length;
  const stacks = b.minutes.map((_, i) => b.values.reduce((sum, v) => sum + v[i], 0));
  const max = roundUp(Math.max(0, ...stacks));
  const plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
  const y = (v) => TOP + plotH - (v / max) * plotH;
  const slot = plotW / Math.max(n, 1);
  const totals = series.map((x) => x.values.reduce((a, c) => a + c, 0));
  const ticks = max > 1 ? [0, max / 2, max] : [0, max];
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': summary(title, minutes, series, totals, b) });
  series.forEach((x, k) => svg.setAttribute('data-total-' + x.key, totals[k]));
  svg.append(s('title', { text: title }));
  svg.append(s('g', { class: 'grid' },
    ticks.map((v) => s('line', { x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }))));
  svg.append(s('g', { class: 'axis' },
    ticks.map((v) => s('text', { x: LEFT - 4, y: y(v) + 4, 'text-anchor': 'end', text: fmt(v) })),
    [0, Math.floor(n / 2), n - 1].filter((i, j, a) => n && a.indexOf(i) === j).map((i) =>
      s('text', { x: LEFT + slot * i + slot / 2, y: H - 6, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle',
        text: i === n - 1 ? 'now' : hhmm(b.minutes[i]) }))));
  const bars = s('g', { class: 'bars' });
  b.minutes.forEach((m, i) => {
    let base = 0;
    series.forEach((x, k) => {
      const v = b.values[k][i];
      if (!v) return;
      const rect = s('rect', { x: LEFT + slot * i + slot * 0.1, width: Math.max(slot * 0.8, 0.5),
        y: y(base + v), height: Math.max(y(base) - y(base + v), 0.5), class: x.cls });
      rect.append(s('title', { text: `${hhmm(m)}: ${v} ${x.name}` }));
      bars.append(rect);
      base += v;
    });
  });
  svg.append(bars);
  return svg;
}
const fmt = (v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(v));

function summary(title, minutes, series, totals, b) {
  const parts = series.map((x, k) => `${totals[k].toLocaleString('en')} ${x.name}`);
  let peak = -1, at = 0;
  b.minutes.forEach((m, i) => {
    const v = b.values.reduce((sum, vals) => sum + vals[i], 0);
    if (v > peak) { peak = v; at = i; }
  });
  const unit = b.size === 1 ? 'minute' : `${b.size} minutes`;
  const peakText = peak > 0 ? `; busiest ${unit} ${hhmm(b.minutes[at])} with ${peak.toLocaleString('en')}` : '';
  return `${title}, last ${minutes.length} minutes: ${parts.join(', ')}${peakText}.`;
}
