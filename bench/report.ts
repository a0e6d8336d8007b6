/**
 * report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) that a
 * person can open from disk. Charts: CPU per call-second and latency against concurrent calls (one
 * point per ramp step; a fixed run is a one-step ramp) and the latency distribution of the step the
 * result reports.
 */
import type { BenchDetails, BenchResult, StepResult } from './run.js';
import type { SliceSeries } from './slices.js';

const W = 640;
const H = 300;
const M = { l: 64, r: 16, t: 28, b: 44 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return String(Math.round(v));
  if (Math.abs(v) >= 10) return v.toFixed(1).replace(/\.0$/, '');
  return v.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
}

function axes(title: string, xLabel: string, yLabel: string, xMin: number, xMax: number, yMax: number): { svg: string; x: (v: number) => number; y: (v: number) => number } {
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const x = (v: number) => M.l + (xMax === xMin ? pw / 2 : ((v - xMin) / (xMax - xMin)) * pw);
  const y = (v: number) => M.t + ph - (v / yMax) * ph;
  let svg = `<text x="${W / 2}" y="18" text-anchor="middle" class="t">${esc(title)}</text>`;
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    svg += `<line x1="${M.l}" x2="${W - M.r}" y1="${y(v)}" y2="${y(v)}" class="g"/><text x="${M.l - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`;
  }
  const ticks = xMax === xMin ? [xMin] : Array.from({ length: 6 }, (_, i) => xMin + ((xMax - xMin) * i) / 5);
  for (const v of ticks) svg += `<text x="${x(v)}" y="${H - M.b + 16}" text-anchor="middle">${fmt(v)}</text>`;
  svg += `<line x1="${M.l}" x2="${W - M.r}" y1="${y(0)}" y2="${y(0)}" class="a"/><line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${y(0)}" class="a"/>`;
  svg += `<text x="${M.l + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`;
  svg += `<text transform="translate(14 ${M.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`;
  return { svg, x, y };
}

function legend(series: { name: string; dashed?: boolean }[]): string {
  return series
    .map((s, i) => `<g transform="translate(${M.l + 10 + (i % 2) * 230} ${M.t + 8 + Math.floor(i / 2) * 16})"><line x1="0" x2="18" y1="0" y2="0" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/><text x="24" y="4">${esc(s.name)}</text></g>`)
    .join('');
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const yMax = niceMax(Math.max(0, ...ys) * 1.1);
  const { svg, x, y } = axes(title, xLabel, yLabel, xMin, xMax, yMax);
  let body = svg;
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    body += `<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`;
    for (const p of s.points) body += `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${c}"><title>${esc(s.name)}: ${fmt(p[0])} → ${fmt(p[1])}</title></circle>`;
  });
  body += legend(series);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${body}</svg>`;
}

/** Overlaid histograms: bars of `width` from 0, counts normalised to % of each series. */
export function histogramChart(title: string, xLabel: string, width: number, series: { name: string; counts: number[] }[]): string {
  const norm = series.map((s) => {
    const total = s.counts.reduce((a, b) => a + b, 0) || 1;
    return s.counts.map((c) => (c / total) * 100);
  });
  const n = Math.max(1, ...series.map((s) => s.counts.length));
  const yMax = niceMax(Math.max(0, ...norm.flat()) * 1.1);
  const { svg, x, y } = axes(title, xLabel, '% of frames', 0, n * width, yMax);
  let body = svg;
  const bw = (x(width) - x(0)) / Math.max(1, series.length);
  norm.forEach((vals, si) => {
    vals.forEach((v, i) => {
      if (v <= 0) return;
      const x0 = x(i * width) + si * bw;
      body += `<rect x="${x0.toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(0.5, bw - 0.2).toFixed(2)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}" opacity="0.85"><title>${esc(series[si]!.name)} ${fmt(i * width)}–${fmt((i + 1) * width)} ms: ${v.toFixed(2)}%</title></rect>`;
    });
  });
  body += legend(series);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${body}</svg>`;
}

function table(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

function stepsTable(steps: StepResult[]): string {
  const head = ['calls', 'pass', 'CPU µs/call·s', 'SUT CPU %', 'RSS kB/call', 'loss c→b %', 'loss b→c %', 'c→b p50/p99/max ms', 'b→c p50/p99/max ms', 'failed', 'generator CPU %', 'gen lag ms', 'bot CPU %', 'other load %', 'limited by'];
  const rows = steps.map((s) => [
    s.calls_in_window,
    s.pass ? 'yes' : 'no',
    s.cpu_us_per_call_second,
    s.sut_cpu_pct,
    s.rss_kb_per_call,
    (s.loss_caller_to_bot * 100).toFixed(3),
    (s.loss_bot_to_caller * 100).toFixed(3),
    `${s.latency_ms.caller_to_bot.p50} / ${s.latency_ms.caller_to_bot.p99} / ${s.latency_ms.caller_to_bot.max}`,
    `${s.latency_ms.bot_to_caller.p50} / ${s.latency_ms.bot_to_caller.p99} / ${s.latency_ms.bot_to_caller.max}`,
    s.calls_failed,
    s.loadgen_cpu_pct,
    s.loadgen_lag_max_ms,
    s.bot_cpu_pct,
    s.other_cpu_pct,
    s.limited_by || '',
  ]);
  return `<table class="steps"><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}

export function renderReport(result: BenchResult, details: BenchDetails): string {
  const steps = details.steps;
  const reported = steps.find((s) => s.calls_target === result.calls_target) ?? steps[0];
  const pts = (f: (s: StepResult) => number): [number, number][] => steps.map((s) => [s.calls_in_window, f(s)]);
  const charts = [
    lineChart('CPU per call-second vs concurrent calls', 'concurrent calls', 'µs CPU per call-second', [
      { name: 'media node (SUT)', points: pts((s) => s.cpu_us_per_call_second) },
      { name: 'load generator (not SUT)', points: pts((s) => s.loadgen_cpu_us_per_call_second), dashed: true },
    ]),
    lineChart('Added latency vs concurrent calls', 'concurrent calls', 'ms', [
      { name: 'caller→bot p50', points: pts((s) => s.latency_ms.caller_to_bot.p50), dashed: true },
      { name: 'caller→bot p99', points: pts((s) => s.latency_ms.caller_to_bot.p99) },
      { name: 'bot→caller p50', points: pts((s) => s.latency_ms.bot_to_caller.p50), dashed: true },
      { name: 'bot→caller p99', points: pts((s) => s.latency_ms.bot_to_caller.p99) },
    ]),
    lineChart('SUT CPU and memory vs concurrent calls', 'concurrent calls', '% of one core / MB', [
      { name: 'media node CPU %', points: pts((s) => s.sut_cpu_pct) },
      { name: 'media node RSS MB', points: pts((s) => s.sut_rss_kb / 1024), dashed: true },
    ]),
  ];
  if (reported) {
    charts.push(
      histogramChart(`Latency distribution at ${reported.calls_in_window} calls`, 'ms', reported.latency_bins_ms.width, [
        { name: 'caller→bot', counts: reported.latency_bins_ms.caller_to_bot },
        { name: 'bot→caller', counts: reported.latency_bins_ms.bot_to_caller },
      ]),
    );
    // One event (a stall) or a steady cost: the worst latency of each 100 ms of the window.
    const overTime = (x: SliceSeries): [number, number][] => x.maxMs.map((ms, i) => [(i * x.sliceMs) / 1000, ms]);
    const slices = reported.latency_slices;
    charts.push(
      lineChart(`Worst latency per ${slices.bot_to_caller.sliceMs} ms of the window at ${reported.calls_in_window} calls`, 's into the window', 'ms', [
        { name: 'caller→bot', points: overTime(slices.caller_to_bot) },
        { name: 'bot→caller', points: overTime(slices.bot_to_caller) },
      ]),
    );
  }
  const pctStr = (v: number) => `${(v * 100).toFixed(3)}%`;
  const summary: [string, string][] = [
    ['scenario', result.scenario],
    ['capacity', result.capacity ? `${result.capacity.calls} calls (limited by: ${result.capacity.limited_by})` : 'fixed run (no ramp)'],
    ['calls target / established / failed', `${result.calls_target} / ${result.calls_established} / ${result.calls_failed}`],
    ['CPU per call-second (SUT)', `${result.cpu_us_per_call_second} µs  (≈ ${result.cpu_us_per_call_second > 0 ? Math.floor(1e6 / result.cpu_us_per_call_second) : '∞'} calls per core)`],
    ['RSS per call (SUT)', `${result.rss_kb_per_call} kB`],
    ['loss caller→bot / bot→caller', `${pctStr(result.loss_caller_to_bot)} / ${pctStr(result.loss_bot_to_caller)}`],
    ['latency caller→bot p50/p99/max', `${result.latency_ms.caller_to_bot.p50} / ${result.latency_ms.caller_to_bot.p99} / ${result.latency_ms.caller_to_bot.max} ms`],
    ['latency bot→caller p50/p99/max', `${result.latency_ms.bot_to_caller.p50} / ${result.latency_ms.bot_to_caller.p99} / ${result.latency_ms.bot_to_caller.max} ms`],
    ['call setup p50/p99', `${result.setup_ms.p50} / ${result.setup_ms.p99} ms at ${result.cps} calls/s`],
    ['load generator CPU per call-second', `${result.loadgen_cpu_us_per_call_second} µs (not counted as SUT)`],
    ['bot PCM rate', `${result.bot_rate_hz} Hz${result.bot_rate_hz === 8000 ? ' (no resampling; byte marker)' : ' (8↔16 kHz resampled by the node; tone marker)'}`],
    ['window', `${result.window_s} s`],
    ['machine', `${details.machine.cpu}, ${details.machine.cores} cores, ${details.machine.mem_gb} GB, Linux ${details.machine.kernel}, Node ${details.machine.node}`],
    ['pinning', details.pinning ? Object.entries(details.pinning).map(([k, v]) => `${k}→cpu ${v}`).join(', ') : 'none'],
    ['command', details.command],
    ['started', details.started],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BotEdge capacity benchmark — ${esc(result.scenario)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-variant-numeric:tabular-nums}
table.steps td{text-align:right}th{background:#f4f4f4}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg{background:#fff;border:1px solid #ddd;font-size:11px}svg .t{font-size:13px;font-weight:600}
svg .g{stroke:#eee}svg .a{stroke:#666}
</style></head><body>
<h1>BotEdge capacity benchmark</h1>
${table(summary)}
<h2>Charts</h2>
<div class="charts">${charts.join('\n')}</div>
<h2>Steps</h2>
${stepsTable(steps)}
<h2>The edge's own media counters (sum of <code>ended</code> events)</h2>
${table(Object.entries(details.edge_media_stats).map(([k, v]) => [k, String(v)]))}
<h2>The edge's QoS of the callers' streams (<code>ended</code> events)</h2>
${details.edge_qos ? table(Object.entries(details.edge_qos).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])) : '<p>none reported</p>'}
<p>Loss counts frames by the send-time marker inside the audio; latency is measured on the machine's
monotonic clock shared by the load generator and the instrumented echo bot. CPU is utime+stime of
the system-under-test processes from /proc over the window.</p>
</body></html>
`;
}
