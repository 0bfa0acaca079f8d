import type { DashboardModel, Kpi } from './model.js';
import {
  escapeHtml as e,
  feedbackChart,
  funnelChart,
  histogramChart,
  outcomesChart,
  volumeChart,
} from './svg.js';

/** The dashboard page: server-rendered HTML and SVG; one stylesheet and one small script, same origin. */
export interface PageOptions {
  /** Where the assets and the export live, e.g. '' when mounted at the root. */
  basePath: string;
  /** Milliseconds the figures took, shown in the footer. */
  elapsedMs?: number;
  practiceName?: string;
}

export function renderDashboard(model: DashboardModel, options: PageOptions): string {
  const base = options.basePath;
  const query = new URLSearchParams({
    periodStart: model.period.start,
    periodEnd: model.period.end,
    ...(model.source ? { source: model.source.key } : {}),
  });
  const title = `Referral programme — ${model.source ? model.source.display : 'all referrers'}`;
  const sourceOptions = model.sources
    .map(
      (s) =>
        `<option value="${e(s.key)}"${s.key === model.source?.key ? ' selected' : ''}>${e(s.display)}${s.kind === 'organization' ? ' (organisation)' : ''} — ${s.referrals}</option>`,
    )
    .join('');
  const section = (id: string, heading: string, body: string, note = ''): string =>
    `<section class="card" id="${id}"><h2>${heading}</h2><figure class="chart" data-chart="${id}">${body}</figure>${note}</section>`;
  const empty = '<p class="empty">No data for this period and source.</p>';
  const dropOff = model.dropOff.length
    ? `<table class="table" data-table="drop-off"><thead><tr><th>Stopped</th><th class="num">Referrals</th><th>Why</th></tr></thead><tbody>${model.dropOff
        .map(
          (d) =>
            `<tr><td>${e(d.label)}</td><td class="num">${d.count}</td><td>${d.reasons
              .map((r) => `${e(r.display)} <span class="muted">(${r.count})</span>`)
              .join(', ')}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '';
  const intervals = `<table class="table" data-table="timing"><thead><tr><th>From referral to</th><th class="num">n</th><th class="num">Median (days)</th><th class="num">90th percentile (days)</th></tr></thead><tbody>${model.timing.intervals
    .map(
      (i) =>
        `<tr data-interval="${i.code}"><td>${e(i.label)}</td><td class="num">${i.n}</td><td class="num">${fmt(i.median)}</td><td class="num">${fmt(i.p90)}</td></tr>`,
    )
    .join('')}</tbody></table>`;
  const comments = model.feedback.comments.length
    ? `<ul class="comments">${model.feedback.comments
        .map(
          (c) => `<li><q>${e(c.text)}</q> <span class="muted">— ${e(c.source)}, ${e(c.authored)}</span></li>`,
        )
        .join('')}</ul>`
    : '';
  const hasReferrals = model.funnel[0] !== undefined && model.funnel[0].count > 0;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${e(title)}</title>
<link rel="stylesheet" href="${base}/dashboard/assets/dashboard.css">
<script src="${base}/dashboard/assets/dashboard.js" defer></script>
</head>
<body>
<header class="top">
<h1>${e(options.practiceName ?? 'Referral programme')}</h1>
<p class="muted">Referrals authored ${e(model.period.start)} to ${e(model.period.end)} · ${e(model.source ? model.source.display : 'all referring sources')}</p>
</header>
<form class="filters" method="get" action="${base}/dashboard" data-filters>
<label>From <input type="date" name="periodStart" value="${e(model.period.start.slice(0, 10))}" required></label>
<label>To <input type="date" name="periodEnd" value="${e(model.period.end.slice(0, 10))}" required></label>
<label>Referring source <select name="source"><option value="">All referring sources</option>${sourceOptions}</select></label>
<button type="submit">Apply</button>
<span class="spacer"></span>
<button type="button" data-export="${base}/analytics/export.csv?${e(query.toString())}">Export referrals (CSV)</button>
<a href="${base}/analytics/measures/pt-referral-conversion.csv?${e(
    new URLSearchParams({ periodStart: model.period.start, periodEnd: model.period.end }).toString(),
  )}">Funnel MeasureReport (CSV)</a>
<progress max="1" value="0" hidden data-export-progress></progress><span class="muted" data-export-status aria-live="polite"></span>
</form>
<main>
<dl class="kpis">${model.kpis.map(kpi).join('')}</dl>
${section('volume', 'Referral volume by source', hasReferrals ? volumeChart(model.volume) : empty)}
${section('funnel', 'Conversion funnel', hasReferrals ? funnelChart(model.funnel) : empty, dropOff)}
${section('time-to-first-visit', 'Time to first visit', hasReferrals ? histogramChart(model.timing) : empty, intervals)}
${section('outcomes', 'Outcomes, initial evaluation to discharge', model.outcomes.length ? outcomesChart(model.outcomes) : empty, '<p class="muted">Bars: share of discharged patients whose change reaches the measure\'s minimal clinically important difference (MCID).</p>')}
${section('feedback', `Referrer feedback <span class="muted">(${model.feedback.responses} responses)</span>`, model.feedback.responses ? feedbackChart(model.feedback) : empty, comments)}
</main>
<footer class="muted">Figures computed from the stored FHIR resources${options.elapsedMs !== undefined ? ` in ${Math.round(options.elapsedMs)} ms` : ''}; definitions: the Measure resources at <a href="${base}/fhir/Measure/pt-referral-conversion">/fhir/Measure/…</a>.</footer>
</body>
</html>
`;
}

function kpi(k: Kpi): string {
  return `<div class="kpi"><dt>${e(k.label)}</dt><dd data-kpi="${k.code}" data-value="${k.value ?? ''}">${formatKpi(k)}</dd></div>`;
}

function formatKpi(k: Kpi): string {
  if (k.value === undefined) return '–';
  switch (k.format) {
    case 'count':
      return String(k.value);
    case 'percent':
      return `${(k.value * 100).toFixed(1)}%`;
    case 'days':
      return `${k.value.toFixed(1)} d`;
    case 'score':
      return `${k.value.toFixed(2)} / 5`;
  }
}

function fmt(v: number | undefined): string {
  return v === undefined ? '–' : v.toFixed(1);
}

export function errorPage(status: number, message: string, base: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dashboard: ${status}</title><link rel="stylesheet" href="${base}/dashboard/assets/dashboard.css"></head><body><main><section class="card"><h1>${status}</h1><p>${e(message)}</p><p><a href="${base}/dashboard">Back to the dashboard</a></p></section></main></body></html>`;
}
