/**
 * The dashboard's stylesheet and script, served from the service itself (no CDN, no build step).
 * The script only drives the CSV export with a progress bar; every chart works without it.
 */
export const DASHBOARD_CSS = `
:root { color-scheme: light; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; --card: #fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
header.top { padding: 16px 24px 4px; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 15px; margin: 0 0 10px; }
main { padding: 0 24px 24px; display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; }
.filters { display: flex; flex-wrap: wrap; align-items: end; gap: 10px; padding: 8px 24px 16px; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
.filters input, .filters select, .filters button { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
.filters select { max-width: 320px; }
.filters button { cursor: pointer; background: #1f6feb; color: #fff; border-color: #1f6feb; }
.filters button[data-export] { background: #fff; color: var(--fg); border-color: var(--line); }
.filters .spacer { flex: 1; }
.filters progress { width: 160px; }
.kpis { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 0; }
.kpi { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.kpi dt { font-size: 12px; color: var(--muted); }
.kpi dd { margin: 2px 0 0; font-size: 22px; font-weight: 600; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
.chart { margin: 0; }
.chart-svg { width: 100%; height: auto; display: block; }
.chart-svg .grid { stroke: #eaeef2; }
.chart-svg .axis { fill: var(--muted); font-size: 11px; }
.chart-svg .label { fill: var(--fg); font-size: 13px; }
.chart-svg .value { fill: var(--fg); font-size: 12px; }
.chart-svg .muted { fill: var(--muted); }
.chart-svg .track { fill: #eaeef2; }
.chart-svg .marker-median { stroke: #cf222e; stroke-width: 2; }
.chart-svg .marker-p90 { stroke: #8250df; stroke-width: 2; stroke-dasharray: 4 3; }
.chart-svg .marker-label { fill: var(--fg); font-size: 11px; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 0; margin: 8px 0 0; font-size: 12px; }
.legend svg { vertical-align: -1px; }
.table { border-collapse: collapse; width: 100%; margin-top: 10px; font-size: 13px; }
.table th, .table td { text-align: left; padding: 4px 6px; border-top: 1px solid var(--line); vertical-align: top; }
.table .num { text-align: right; font-variant-numeric: tabular-nums; }
.comments { margin: 10px 0 0; padding-left: 18px; }
.muted { color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
footer { padding: 0 24px 24px; font-size: 12px; }
`;

export const DASHBOARD_JS = `'use strict';
// CSV export with a progress bar: the server sends X-Total-Rows first, then streams the rows.
document.addEventListener('DOMContentLoaded', function () {
  var button = document.querySelector('[data-export]');
  var bar = document.querySelector('[data-export-progress]');
  var status = document.querySelector('[data-export-status]');
  if (!button || !bar || !status || !window.fetch || !window.ReadableStream) return;
  button.addEventListener('click', function () {
    var url = button.getAttribute('data-export');
    button.disabled = true;
    bar.hidden = false;
    bar.removeAttribute('value');
    status.textContent = 'Preparing…';
    fetch(url, { headers: { accept: 'text/csv' }, credentials: 'same-origin' }).then(function (res) {
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      var total = Number(res.headers.get('X-Total-Rows')) || 0;
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var chunks = [];
      var rows = -1;
      function pump() {
        return reader.read().then(function (step) {
          if (step.done) return;
          var text = decoder.decode(step.value, { stream: true });
          chunks.push(text);
          rows += (text.match(/\\n/g) || []).length;
          if (total > 0) {
            bar.max = total;
            bar.value = Math.min(Math.max(rows, 0), total);
            status.textContent = Math.max(rows, 0) + ' of ' + total + ' referrals';
          } else {
            status.textContent = Math.max(rows, 0) + ' referrals';
          }
          return pump();
        });
      }
      return pump().then(function () {
        var blob = new Blob(chunks, { type: 'text/csv' });
        var link = document.createElement('a');
        link.href = URL.createObjectURL(blob);
        link.download = 'referrals.csv';
        link.setAttribute('data-export-link', '');
        link.textContent = 'Download again';
        status.textContent = 'Done: ' + Math.max(rows, 0) + ' referrals. ';
        status.appendChild(link);
        bar.max = 1;
        bar.value = 1;
        status.setAttribute('data-export-done', String(Math.max(rows, 0)));
        link.click();
      });
    }).catch(function (err) {
      status.textContent = 'Export failed: ' + err.message;
    }).then(function () {
      button.disabled = false;
    });
  });
});
`;
