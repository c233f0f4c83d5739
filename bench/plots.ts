import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { outDir, ROOT } from './lib/topology';

/**
 * Plots for docs/benchmarks.md from the benchmarks' JSON (.bench-out/*.json): small SVG charts drawn here, rendered
 * to PNG with @resvg/resvg-js. `node --import tsx bench/plots.ts [--out docs/benchmarks]`; a missing JSON is skipped.
 */

interface Series {
  name: string;
  points: [number, number][];
  color: string;
  dash?: boolean;
}

const W = 900;
const H = 480;
const M = { left: 80, right: 210, top: 50, bottom: 60 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function niceStep(span: number, target = 6): number {
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out;
  }
  const step = niceStep(max - min);
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Math.round(v * 1e9) / 1e9);
  return out;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1000) return `${Math.round(v / 100) / 10}k`;
  return String(Math.round(v * 100) / 100);
}

function lineChart(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xLog?: boolean;
  yLog?: boolean;
  yMin?: number;
  xMin?: number;
}): string {
  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const pos = (v: number, log?: boolean) => (log ? v > 0 : true);
  const xs = all.map(([x]) => x).filter((x) => pos(x, o.xLog));
  const ys = all.map(([, y]) => y).filter((y) => pos(y, o.yLog));
  let [x0, x1] = [o.xMin ?? Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [o.yMin ?? (o.yLog ? Math.min(...ys) : Math.min(0, ...ys)), Math.max(...ys)];
  if (o.xLog) [x0, x1] = [10 ** Math.floor(Math.log10(x0)), 10 ** Math.ceil(Math.log10(x1))];
  if (o.yLog) [y0, y1] = [10 ** Math.floor(Math.log10(y0)), 10 ** Math.ceil(Math.log10(y1))];
  else y1 = y1 + (y1 - y0) * 0.05;
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) =>
    M.left +
    (o.xLog ? (Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) : (x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) =>
    M.top +
    ph -
    (o.yLog ? (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) : (y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  for (const t of ticks(x0, x1, !!o.xLog)) {
    parts.push(`<line x1="${sx(t)}" y1="${M.top}" x2="${sx(t)}" y2="${M.top + ph}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${sx(t)}" y="${M.top + ph + 20}" text-anchor="middle" font-size="13">${fmt(t)}</text>`);
  }
  for (const t of ticks(y0, y1, !!o.yLog)) {
    parts.push(`<line x1="${M.left}" y1="${sy(t)}" x2="${M.left + pw}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 8}" y="${sy(t) + 4}" text-anchor="end" font-size="13">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  o.series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => pos(x, o.xLog) && pos(y, o.yLog) && Number.isFinite(y));
    if (pts.length === 0) return;
    const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.2"${s.dash ? ' stroke-dasharray="7,5"' : ''}/>`
    );
    if (pts.length <= 12)
      for (const [x, y] of pts) parts.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3.5" fill="${s.color}"/>`);
    const ly = M.top + 10 + i * 22;
    parts.push(
      `<line x1="${W - M.right + 15}" y1="${ly}" x2="${W - M.right + 45}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${s.dash ? ' stroke-dasharray="7,5"' : ''}/>`
    );
    parts.push(`<text x="${W - M.right + 52}" y="${ly + 4}" font-size="13">${esc(s.name)}</text>`);
  });
  parts.push(
    `<text x="${M.left + pw / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(o.title)}</text>`
  );
  parts.push(`<text x="${M.left + pw / 2}" y="${H - 15}" text-anchor="middle" font-size="14">${esc(o.xLabel)}</text>`);
  parts.push(
    `<text x="20" y="${M.top + ph / 2}" text-anchor="middle" font-size="14" transform="rotate(-90 20 ${M.top + ph / 2})">${esc(o.yLabel)}</text>`
  );
  return svg(parts);
}

function barChart(o: {
  title: string;
  yLabel: string;
  bars: { label: string; value: number; color: string }[];
}): string {
  const pw = W - M.left - 40;
  const ph = H - M.top - M.bottom;
  const max = Math.max(...o.bars.map((b) => b.value)) * 1.1;
  const sy = (y: number) => M.top + ph - (y / max) * ph;
  const parts: string[] = [];
  for (const t of ticks(0, max, false)) {
    parts.push(`<line x1="${M.left}" y1="${sy(t)}" x2="${M.left + pw}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 8}" y="${sy(t) + 4}" text-anchor="end" font-size="13">${fmt(t)}</text>`);
  }
  const slot = pw / o.bars.length;
  o.bars.forEach((b, i) => {
    const x = M.left + i * slot + slot * 0.2;
    parts.push(
      `<rect x="${x}" y="${sy(b.value)}" width="${slot * 0.6}" height="${M.top + ph - sy(b.value)}" fill="${b.color}"/>`
    );
    parts.push(
      `<text x="${x + slot * 0.3}" y="${sy(b.value) - 6}" text-anchor="middle" font-size="13">${fmt(b.value)}</text>`
    );
    parts.push(
      `<text x="${x + slot * 0.3}" y="${M.top + ph + 20}" text-anchor="middle" font-size="13">${esc(b.label)}</text>`
    );
  });
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  parts.push(
    `<text x="${M.left + pw / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(o.title)}</text>`
  );
  parts.push(
    `<text x="20" y="${M.top + ph / 2}" text-anchor="middle" font-size="14" transform="rotate(-90 20 ${M.top + ph / 2})">${esc(o.yLabel)}</text>`
  );
  return svg(parts);
}

function svg(parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>`;
}

function png(svgText: string, file: string): void {
  const r = new Resvg(svgText, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    fitTo: { mode: 'width', value: W },
  });
  writeFileSync(file, r.render().asPng());
  console.log(`wrote ${path.relative(ROOT, file)}`);
}

// ---- the charts -------------------------------------------------------------------------------------------------

type AnyJson = { quick: boolean; results: Record<string, unknown> };

function load(name: string): AnyJson | undefined {
  const file = path.join(outDir(), `${name}.json`);
  if (!existsSync(file)) {
    console.log(`skip ${name}: no ${path.relative(ROOT, file)}`);
    return undefined;
  }
  const j = JSON.parse(readFileSync(file, 'utf8')) as AnyJson;
  if (j.quick) console.log(`note: ${name}.json is a --quick run`);
  return j;
}

const rssSeries = (timeline: Record<string, number>[], names: string[]): Series[] =>
  names.map((n, i) => ({
    name: n,
    color: COLORS[i % COLORS.length]!,
    points: timeline.filter((s) => s[n] !== undefined).map((s) => [s.t!, s[n]! / 1048576] as [number, number]),
  }));
const keysOf = (timeline: Record<string, number>[]) =>
  [...new Set(timeline.flatMap((s) => Object.keys(s)))].filter((k) => k !== 't');

function main(): void {
  const args = process.argv.slice(2);
  const outArg = args.indexOf('--out');
  const out = path.resolve(ROOT, outArg >= 0 ? args[outArg + 1]! : 'docs/benchmarks');
  mkdirSync(out, { recursive: true });

  const b1 = load('b1');
  if (b1) {
    type Step = { kind: string; mode: string; rate?: number; p50: number; p99: number; throughput: number };
    const steps = b1.results.steps as Step[];
    const kinds = ['bare', 'unrouted', 'duplicate', 'new'];
    const label: Record<string, string> = {
      bare: 'bare Koa',
      unrouted: 'unrouted',
      duplicate: 'duplicate',
      new: 'new approval',
    };
    const series: Series[] = kinds.flatMap((k, i) => {
      const open = steps.filter((s) => s.kind === k && s.mode === 'open');
      return [
        { name: `${label[k]} p50`, color: COLORS[i]!, points: open.map((s) => [s.rate!, s.p50] as [number, number]) },
        {
          name: `${label[k]} p99`,
          color: COLORS[i]!,
          dash: true,
          points: open.map((s) => [s.rate!, s.p99] as [number, number]),
        },
      ];
    });
    png(
      lineChart({
        title: 'B1 · acknowledgement latency vs offered rate',
        xLabel: 'offered rate (events/s, open loop)',
        yLabel: 'latency (ms, log scale)',
        series,
        xLog: true,
        yLog: true,
      }),
      path.join(out, 'b1-latency.png')
    );
    png(
      barChart({
        title: 'B1 · maximum acknowledged events/s (closed loop)',
        yLabel: 'events/s',
        bars: kinds.map((k, i) => ({
          label: label[k]!,
          value: steps.find((s) => s.kind === k && s.mode === 'closed')?.throughput ?? 0,
          color: COLORS[i]!,
        })),
      }),
      path.join(out, 'b1-throughput.png')
    );
  }

  const b2 = load('b2');
  if (b2) {
    const sorted = (b2.results.endToEndMsSorted as number[] | undefined) ?? [];
    png(
      lineChart({
        title: 'B2 · approval event → requester notified',
        xLabel: 'latency (ms)',
        yLabel: 'share of approvals (%)',
        series: [
          { name: 'end to end', color: COLORS[0]!, points: sorted.map((v, i) => [v, ((i + 1) / sorted.length) * 100]) },
        ],
        yMin: 0,
      }),
      path.join(out, 'b2-latency-cdf.png')
    );
  }

  const b3 = load('b3');
  if (b3) {
    const r = b3.results as {
      whitelistedAtSec?: number[];
      notifiedAtSec?: number[];
      macs: number;
      approvals: number;
      totalSec: number;
      nacRequestsPerMac: number;
      rssTimeline: Record<string, number>[];
    };
    const params = (b3 as unknown as { params: { simRateLimitRps: number } }).params;
    const rps = params.simRateLimitRps;
    const per = r.macs / r.approvals;
    const cum = (xs: number[] = [], scale = 1): [number, number][] => xs.map((t, i) => [t, (i + 1) * scale]);
    // The same burst on an earlier release, run in the same session (`.bench-out/b3-baseline.json`), when present.
    const baseline = load('b3-baseline');
    const baselineSeries = baseline
      ? [
          {
            name: `MACs whitelisted, ${String((baseline as unknown as { label?: string }).label ?? 'baseline')}`,
            color: COLORS[1]!,
            points: cum((baseline.results as { whitelistedAtSec?: number[] }).whitelistedAtSec),
          },
        ]
      : [];
    png(
      lineChart({
        title: `B3 · onboarding day: ${r.approvals} approvals × ${per} MACs, NAC at ${rps} req/s`,
        xLabel: 'seconds since the first event',
        yLabel: 'MACs',
        xMin: 0,
        series: [
          { name: 'MACs whitelisted', color: COLORS[0]!, points: cum(r.whitelistedAtSec) },
          { name: `notified (× ${per} MACs)`, color: COLORS[2]!, points: cum(r.notifiedAtSec, per) },
          ...baselineSeries,
          {
            name: `bound: 1 write/MAC`,
            color: '#888',
            dash: true,
            points: [
              [0, 0],
              [r.macs / rps, r.macs],
            ],
          },
          {
            name: `bound: ${r.nacRequestsPerMac} req/MAC`,
            color: '#444',
            dash: true,
            points: [
              [0, 0],
              [(r.macs * r.nacRequestsPerMac) / rps, r.macs],
            ],
          },
        ],
      }),
      path.join(out, 'b3-progress.png')
    );
    png(
      lineChart({
        title: 'B3 · resident memory during the onboarding burst',
        xLabel: 'seconds',
        yLabel: 'RSS (MiB)',
        xMin: 0,
        yMin: 0,
        series: rssSeries(r.rssTimeline, keysOf(r.rssTimeline)),
      }),
      path.join(out, 'b3-rss.png')
    );
  }

  const b4 = load('b4');
  if (b4) {
    const tl = b4.results.rssTimeline as Record<string, number>[];
    png(
      lineChart({
        title: `B4 · resident memory while establishing and holding ${String(b4.results.grants)} grants`,
        xLabel: 'seconds',
        yLabel: 'RSS (MiB)',
        xMin: 0,
        yMin: 0,
        series: rssSeries(tl, keysOf(tl)),
      }),
      path.join(out, 'b4-rss.png')
    );
  }
}

main();
