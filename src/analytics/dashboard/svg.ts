import type { DashboardModel } from './model.js';

/**
 * Server-rendered SVG charts: no script, no external assets. Styling comes from the page's
 * stylesheet through classes; numbers are carried in data- attributes for tests and tooling, and
 * every mark has a <title> for a tooltip and for screen readers.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const e = escapeHtml;
export const PALETTE = [
  '#1f6feb',
  '#e36209',
  '#2da44e',
  '#8250df',
  '#cf222e',
  '#0a7d8c',
  '#bf8700',
  '#8c959f',
];

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

function yAxis(max: number, x: number, top: number, height: number, width: number): string {
  let out = '';
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = top + height - (height * i) / 4;
    out += `<line class="grid" x1="${x}" x2="${x + width}" y1="${y}" y2="${y}"/>`;
    out += `<text class="axis" x="${x - 6}" y="${y + 4}" text-anchor="end">${Number.isInteger(v) ? v : v.toFixed(1)}</text>`;
  }
  return out;
}

/** Referrals per month (or week), stacked by referring source. */
export function volumeChart(volume: DashboardModel['volume']): string {
  const W = 760;
  const H = 280;
  const left = 44;
  const top = 12;
  const plotH = 200;
  const plotW = W - left - 12;
  const totals = volume.buckets.map((_, i) => volume.series.reduce((s, x) => s + (x.counts[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const step = plotW / Math.max(1, volume.buckets.length);
  const barW = Math.max(2, step * 0.7);
  let bars = '';
  volume.buckets.forEach((bucket, i) => {
    let y = top + plotH;
    volume.series.forEach((s, k) => {
      const n = s.counts[i] ?? 0;
      if (n === 0) return;
      const h = (plotH * n) / max;
      y -= h;
      bars += `<rect class="bar" data-series="${e(s.key)}" data-bucket="${bucket}" data-value="${n}" x="${(left + i * step + (step - barW) / 2).toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[k % PALETTE.length]}"><title>${e(s.display)}, ${bucket}: ${n}</title></rect>`;
    });
    const labelEvery = Math.ceil(volume.buckets.length / 12);
    if (i % labelEvery === 0) {
      const label = volume.unit === 'month' ? bucket.slice(2) : bucket.slice(5);
      bars += `<text class="axis" x="${(left + i * step + step / 2).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${label}</text>`;
    }
  });
  const legend = volume.series
    .map(
      (s, k) =>
        `<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="${PALETTE[k % PALETTE.length]}"/></svg> ${e(s.display)} <span class="muted">(${s.counts.reduce((a, b) => a + b, 0)})</span></li>`,
    )
    .join('');
  return `<svg class="chart-svg" viewBox="0 0 ${W} ${H - 40}" role="img" aria-label="Referrals per ${volume.unit} by referring source">${yAxis(max, left, top, plotH, plotW)}${bars}</svg><ul class="legend">${legend}</ul>`;
}

/** The funnel as horizontal bars, each as a share of the referrals. */
export function funnelChart(funnel: DashboardModel['funnel']): string {
  const W = 760;
  const rowH = 34;
  const labelW = 110;
  const plotW = W - labelW - 170;
  const max = Math.max(1, funnel[0]?.count ?? 1);
  const rows = funnel
    .map((stage, i) => {
      const w = (plotW * stage.count) / max;
      const y = i * rowH + 4;
      const pct = stage.share !== undefined ? ` (${(stage.share * 100).toFixed(1)}%)` : '';
      return `<text class="label" x="${labelW - 8}" y="${y + 18}" text-anchor="end">${e(stage.label)}</text><rect class="bar" data-stage="${stage.code}" data-value="${stage.count}" x="${labelW + (plotW - w) / 2}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${PALETTE[i % PALETTE.length]}"><title>${e(stage.label)}: ${stage.count}${pct}</title></rect><text class="value" x="${labelW + plotW + 8}" y="${y + 18}">${stage.count}${pct}</text>`;
    })
    .join('');
  return `<svg class="chart-svg" viewBox="0 0 ${W} ${funnel.length * rowH + 8}" role="img" aria-label="Conversion funnel">${rows}</svg>`;
}

/** Days from referral to first visit: a histogram with the median and 90th percentile marked. */
export function histogramChart(timing: DashboardModel['timing']): string {
  const W = 760;
  const H = 250;
  const left = 44;
  const top = 24;
  const plotH = 170;
  const plotW = W - left - 12;
  const bins = timing.histogram;
  const max = niceMax(Math.max(0, ...bins.map((b) => b.count)));
  const step = plotW / Math.max(1, bins.length);
  let out = yAxis(max, left, top, plotH, plotW);
  bins.forEach((bin, i) => {
    const h = (plotH * bin.count) / max;
    out += `<rect class="bar" data-bin="${e(bin.label)}" data-value="${bin.count}" x="${(left + i * step + step * 0.1).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${(step * 0.8).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[0]}"><title>${e(bin.label)} days: ${bin.count}</title></rect>`;
    out += `<text class="axis" x="${(left + i * step + step / 2).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${e(bin.label)}</text>`;
  });
  // Markers: positioned within the bin holding the value, proportionally.
  const xOf = (days: number): number => {
    const bucket = bins.findIndex((_, i) => {
      const edges = [0, 3, 7, 10, 14, 21, 28, 42];
      const from = edges[i] ?? 0;
      const to = edges[i + 1] ?? Infinity;
      return days >= from && days < to;
    });
    const edges = [0, 3, 7, 10, 14, 21, 28, 42, Math.max(56, timing.firstVisit.max)];
    const i = bucket < 0 ? bins.length - 1 : bucket;
    const from = edges[i] ?? 0;
    const to = edges[i + 1] ?? from + 1;
    return left + i * step + step * Math.min(1, Math.max(0, (days - from) / (to - from)));
  };
  // Labels on opposite sides of their lines, so close values stay readable.
  for (const [name, value, cls, anchor, dx] of [
    ['median', timing.firstVisit.median, 'marker-median', 'end', -4],
    ['90th percentile', timing.firstVisit.p90, 'marker-p90', 'start', 4],
  ] as const) {
    if (value === undefined) continue;
    const x = xOf(value);
    out += `<line class="${cls}" data-marker="${name}" data-value="${value}" x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${top - 6}" y2="${top + plotH}"/><text class="marker-label" x="${(x + dx).toFixed(1)}" y="${top - 10}" text-anchor="${anchor}">${name} ${value.toFixed(1)} d</text>`;
  }
  out += `<text class="axis" x="${left + plotW}" y="${H - 4}" text-anchor="end">days from referral to first visit</text>`;
  return `<svg class="chart-svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="Distribution of days from referral to first visit">${out}</svg>`;
}

/** Per outcome measure: share reaching the MCID (bar) and the mean change (text). */
export function outcomesChart(outcomes: DashboardModel['outcomes']): string {
  const W = 760;
  const rowH = 34;
  const labelW = 200;
  const plotW = 220;
  const rows = outcomes
    .map((o, i) => {
      const y = i * rowH + 4;
      const share = o.mcidShare;
      const w = share !== undefined ? plotW * share : 0;
      const unit =
        o.unit === '{score}' ? ' pts' : o.unit === 'deg' ? '°' : o.unit === '%' ? ' %' : ` ${o.unit}`;
      const change =
        o.meanChange !== undefined
          ? `${o.meanChange > 0 ? '+' : ''}${o.meanChange}${unit} mean (${o.better === 'lower' ? '↓' : '↑'} better), n=${o.n}`
          : `n=${o.n}`;
      return `<text class="label" x="${labelW - 8}" y="${y + 18}" text-anchor="end">${e(o.label)}</text><rect class="track" x="${labelW}" y="${y}" width="${plotW}" height="${rowH - 8}"/>${share !== undefined ? `<rect class="bar" data-measure="${o.id}" data-value="${share}" x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${PALETTE[2]}"><title>${e(o.label)}: ${(share * 100).toFixed(1)}% reached the MCID (${o.mcid})</title></rect><text class="value" x="${labelW + 6}" y="${y + 18}">${(share * 100).toFixed(0)}% ≥ MCID</text>` : `<text class="value muted" data-measure="${o.id}" x="${labelW + 6}" y="${y + 18}">no MCID</text>`}<text class="value" x="${labelW + plotW + 10}" y="${y + 18}">${e(change)}</text>`;
    })
    .join('');
  return `<svg class="chart-svg" viewBox="0 0 ${W} ${Math.max(1, outcomes.length) * rowH + 8}" role="img" aria-label="Outcomes: share of patients reaching the MCID and mean change">${rows}</svg>`;
}

/** Mean satisfaction per question with the 1-5 distribution as a stacked bar. */
export function feedbackChart(feedback: DashboardModel['feedback']): string {
  const W = 760;
  const rowH = 44;
  const labelW = 150;
  const plotW = 400;
  const colors = ['#cf222e', '#e36209', '#8c959f', '#6cc644', '#2da44e'];
  const rows = feedback.items
    .map((item, i) => {
      const y = i * rowH + 4;
      let x = labelW;
      const total = item.distribution.reduce((a, b) => a + b, 0);
      const segments = item.distribution
        .map((n, k) => {
          if (!total || !n) return '';
          const w = (plotW * n) / total;
          const seg = `<rect class="bar" data-item="${item.code}" data-score="${k + 1}" data-value="${n}" x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 14}" fill="${colors[k]}"><title>${item.label}: ${n} answered ${k + 1}</title></rect>`;
          x += w;
          return seg;
        })
        .join('');
      const mean = item.mean !== undefined ? `mean ${item.mean.toFixed(2)} / 5 (n=${item.n})` : 'no answers';
      return `<text class="label" x="${labelW - 8}" y="${y + 20}" text-anchor="end">${e(item.label)}</text>${total ? segments : `<rect class="track" x="${labelW}" y="${y}" width="${plotW}" height="${rowH - 14}"/>`}<text class="value" data-mean="${item.code}" x="${labelW + plotW + 10}" y="${y + 20}">${mean}</text>`;
    })
    .join('');
  const legend = [1, 2, 3, 4, 5]
    .map(
      (v, k) =>
        `<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="${colors[k]}"/></svg> ${v}</li>`,
    )
    .join('');
  return `<svg class="chart-svg" viewBox="0 0 ${W} ${feedback.items.length * rowH + 8}" role="img" aria-label="Referrer satisfaction">${rows}</svg><ul class="legend">${legend}<li class="muted">1 = very dissatisfied … 5 = very satisfied</li></ul>`;
}
