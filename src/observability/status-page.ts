/**
 * The admin listener's HTML status page: every pool and address at a glance.
 * Self-contained (inline CSS, a few lines of inline JS, no external asset),
 * readable on a phone. The server is the only renderer: the script re-fetches
 * the page every few seconds and swaps the live part in, so everything taken
 * from zone data or check results is HTML-escaped in one place, here.
 */
import type { MemberSnapshot, PoolSnapshot, ResolversSnapshot, Serving } from './snapshot.ts';
import { memberKey, type BalanceHistoryView, type MemberSeries } from './balance-history.ts';

export interface StatusPageData {
  version: string;
  zones: string[];
  startedAt: string;
  ready: boolean;
  pools: PoolSnapshot[];
  /** The resolver demand table's top resolvers; no section without it. */
  resolvers?: ResolversSnapshot | undefined;
  now: Date;
  /** How often the page refreshes itself, ms. */
  refreshMs: number;
  /** CSP nonce of the inline script. */
  nonce: string;
  /** The balance over the last minutes (first-position share, effective weight, load per member); none: no charts. */
  history?: BalanceHistoryView | undefined;
  /** In a cluster: its state in short (admin clusterBrief); none alone. */
  cluster?: { state?: unknown; instance?: unknown; degradedSince?: unknown; error?: unknown } | undefined;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A duration as people read it: 12s, 3m 4s, 2h 5m, 3d 4h. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function timeAgo(iso: string | null, now: Date): string {
  if (iso === null) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return escapeHtml(iso);
  return `<time datetime="${escapeHtml(iso)}" title="${escapeHtml(iso)}">${formatAge(now.getTime() - t)} ago</time>`;
}

const MODE_TEXT: Record<Serving, string> = {
  healthy: 'healthy',
  minHealthy: 'below minHealthy: serving all primaries',
  'allDown:serveAll': 'all down: serving all (fail open)',
  'allDown:backup': 'all down: serving standby',
  'allDown:nodata': 'all down: answering NODATA',
  'allDown:servfail': 'all down: answering SERVFAIL',
};

function modeClass(mode: Serving): string {
  if (mode === 'healthy') return 'mode-ok';
  if (mode === 'minHealthy' || mode === 'allDown:backup') return 'mode-warn';
  return 'mode-bad';
}

function renderMember(m: MemberSnapshot, now: Date, series?: MemberSeries): string {
  const classes = ['member', `state-${m.health}`, m.served ? 'served' : 'not-served'];
  if (m.override) classes.push(`override-${m.override}`);
  const tags: string[] = [`<span class="serve">${m.served ? 'served' : 'not served'}</span>`];
  if (m.role === 'standby') tags.push('<span class="tag role">standby</span>');
  if (m.override) {
    const source = m.overrideSource ? ` <small>(${escapeHtml(m.overrideSource)})</small>` : '';
    tags.push(`<span class="tag override">${escapeHtml(m.override)}${source}</span>`);
  }
  const result =
    m.lastResult === null
      ? '<span class="result">no check yet</span>'
      : `<span class="result ${m.lastOk ? 'ok' : 'fail'}">${m.lastOk ? '✓' : '✗'} ${escapeHtml(m.lastResult)}</span>`;
  const latency = m.latencyMs === null ? '' : ` · ${escapeHtml(Math.round(m.latencyMs))} ms`;
  const streak =
    m.consecutiveFail > 0 ? `${escapeHtml(m.consecutiveFail)} failed in a row` : m.consecutiveOk > 0 ? `${escapeHtml(m.consecutiveOk)} ok in a row` : '';
  const facts: string[] = [];
  if (m.since !== null) facts.push(`${escapeHtml(m.health)} since ${timeAgo(m.since, now)}`);
  facts.push(m.lastCheckAt === null ? 'not checked yet' : `checked ${timeAgo(m.lastCheckAt, now)}`);
  if (streak) facts.push(streak);
  return `<li class="${classes.join(' ')}" data-address="${escapeHtml(m.address)}" data-state="${escapeHtml(m.health)}">
<div class="line"><span class="state">${escapeHtml(m.health)}</span><span class="addr">${escapeHtml(m.address)}</span>${tags.join('')}</div>
<div class="detail">${result}${latency}</div>
<div class="detail muted">${facts.join(' · ')} · <span class="check">${escapeHtml(m.check)}</span></div>
${renderVerdicts(m, now)}${renderBalance(m, series)}
</li>`;
}

/** In a cluster: the combined verdict (quorum) and each instance's, the instance's own first. */
function renderVerdicts(m: MemberSnapshot, now: Date): string {
  const c = m.cluster;
  if (!c) return '';
  const head = `${escapeHtml(c.combined)} by ${escapeHtml(c.basis)} · quorum ${escapeHtml(c.quorum)}: ${escapeHtml(c.down)} of ${escapeHtml(c.voters)} down, ${escapeHtml(c.needed)} needed${c.checkers === null ? '' : ` · checkers ${escapeHtml(c.checkers)}`}${c.probedHere ? '' : ' · not probed here'}`;
  const rows = c.verdicts.map(
    (v) =>
      `<li class="verdict state-${escapeHtml(v.health)}" data-instance="${escapeHtml(v.instance)}"><span class="vstate">${escapeHtml(v.health)}</span> <span class="inst">${escapeHtml(v.instance)}${v.self ? ' (this one)' : ''}</span> <span class="muted">${escapeHtml(v.lastResult ?? '')}${v.lastCheckAt ? ` · ${timeAgo(v.lastCheckAt, now)}` : ''}</span></li>`,
  );
  const none = c.verdicts.length === 0 ? '<li class="muted">no instance has a verdict yet</li>' : '';
  return `<div class="cluster detail"><div class="muted">${head}</div><ul class="verdicts">${rows.join('')}${none}</ul></div>
`;
}

function renderPool(p: PoolSnapshot, now: Date, history?: Map<string, MemberSeries>): string {
  const meta = [`zone ${escapeHtml(p.zone)}`, `TTL ${escapeHtml(p.ttl)}s`, `all down: ${escapeHtml(p.allDown)}`];
  if (p.minHealthy !== null) meta.push(`minHealthy ${escapeHtml(Math.round(p.minHealthy * 100))}%`);
  const up = p.members.filter((m) => m.served).length;
  return `<section class="pool ${modeClass(p.serving)}" data-pool="${escapeHtml(`${p.name} ${p.type}`)}">
<h2><span class="name">${escapeHtml(p.name)}</span> <span class="type">${escapeHtml(p.type)}</span></h2>
<p class="mode">${escapeHtml(MODE_TEXT[p.serving] ?? p.serving)} · ${up}/${p.members.length} served</p>
<p class="muted">${meta.join(' · ')}</p>
<ul class="members">
${p.members.map((m) => renderMember(m, now, history?.get(memberKey(p.zone, p.name, p.type, m.address)))).join('\n')}
</ul>
</section>`;
}

/** A rate as people read it: 1234 → "1234", 3.21 → "3.21", 0.0123 → "0.0123". */
function formatRate(perSecond: number): string {
  if (perSecond >= 100) return String(Math.round(perSecond));
  return perSecond.toPrecision(3).replace(/\.?0+$/, '');
}

/**
 * "Top resolvers": the resolver demand table (balance.resolvers), heaviest
 * first, so an operator sees which resolvers get the shorter TTLs. Shown only
 * when some served pool enables resolver-aware TTLs or the table holds entries.
 */
function renderResolvers(r: ResolversSnapshot | undefined): string {
  if (!r || (r.heavyShare === null && r.resolvers.length === 0)) return '';
  const heavy = r.heavyShare === null ? 'no pool enables resolver-aware TTLs' : `heavy from ${escapeHtml(Math.round(r.heavyShare * 1000) / 10)}% of demand`;
  const meta = `grouped by /${escapeHtml(r.grouping.ipv4)} and /${escapeHtml(r.grouping.ipv6)} · ${heavy} · total ${escapeHtml(formatRate(r.totalDemand))} requests/s · ${escapeHtml(r.occupied)} of ${escapeHtml(r.capacity)} entries`;
  const rows =
    r.resolvers.length === 0
      ? '<tr><td colspan="5" class="muted">no queries for such pools yet</td></tr>'
      : r.resolvers
          .map(
            (x) =>
              `<tr class="${x.heavy ? 'heavy' : 'light'}"><td class="addr">${escapeHtml(x.prefix)}</td><td>${escapeHtml(x.queries)}</td><td>${x.samples > 0 ? escapeHtml(formatRate(x.demand)) : '<span class="muted">not measured</span>'}</td><td>${escapeHtml((x.share * 100).toFixed(1))}%</td><td>${x.heavy ? '<span class="tag heavy">heavy</span>' : ''}</td></tr>`,
          )
          .join('\n');
  return `<section id="resolvers" class="resolvers">
<h2>Top resolvers</h2>
<p class="muted">${meta}</p>
<table>
<thead><tr><th>prefix</th><th>queries</th><th>demand (req/s)</th><th>share</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</section>`;
}

/** In a cluster, one line: this instance and the etcd connection (degraded: a warning, answers go on from own verdicts). */
function renderCluster(c: StatusPageData['cluster']): string {
  if (!c) return '';
  const degraded = c.state === 'degraded';
  const since = degraded && typeof c.degradedSince === 'string' ? ` since ${escapeHtml(c.degradedSince.slice(11, 19))} UTC` : '';
  const why = degraded && c.error ? ` (${escapeHtml(c.error)}): answering on this instance's own verdicts and the last overrides it knew` : '';
  return `<p class="cluster-state ${degraded ? 'cluster-degraded' : 'muted'}" data-cluster-state="${escapeHtml(c.state)}">cluster instance ${escapeHtml(c.instance)} · etcd ${escapeHtml(c.state)}${since}${why}</p>
`;
}

/** The part of the page that the script swaps in on every refresh. */
function renderLive(d: StatusPageData): string {
  const counts = { up: 0, down: 0, unknown: 0 };
  for (const p of d.pools) for (const m of p.members) counts[m.health]++;
  const degraded = d.pools.filter((p) => p.serving !== 'healthy').length;
  const pools =
    d.pools.length === 0
      ? '<p class="empty">No health-checked pools: no zone served defines one.</p>'
      : d.pools.map((p) => renderPool(p, d.now, seriesByMember(d.history))).join('\n');
  const zones = d.zones.length === 1 ? '1 zone' : `${d.zones.length} zones`;
  return `<div id="live">
<p class="muted">version ${escapeHtml(d.version)} · ${zones}: ${d.zones.map(escapeHtml).join(', ')} · started ${timeAgo(d.startedAt, d.now)}</p>
<p class="summary">
<span class="ready ${d.ready ? 'is-ready' : 'not-ready'}">${d.ready ? 'ready' : 'not ready'}</span>
<span class="count state-up">${counts.up} up</span>
<span class="count state-down">${counts.down} down</span>
<span class="count state-unknown">${counts.unknown} unknown</span>
<span class="count ${degraded > 0 ? 'mode-bad' : 'mode-ok'}">${degraded} of ${d.pools.length} pools degraded</span>
</p>
${renderCluster(d.cluster)}<p class="muted">updated <time datetime="${escapeHtml(d.now.toISOString())}">${escapeHtml(d.now.toISOString().slice(11, 19))} UTC</time></p>
<main id="pools">
${pools}
</main>
${renderResolvers(d.resolvers)}
</div>`;
}

const STYLE = `
:root{--up:#1a7f37;--down:#cf222e;--unknown:#6e7781;--warn:#9a6700;--bg:#f6f8fa;--card:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0}
@media (prefers-color-scheme:dark){:root{--up:#3fb950;--down:#f85149;--unknown:#8b949e;--warn:#d29922;--bg:#0d1117;--card:#161b22;--fg:#e6edf3;--muted:#9198a1;--line:#30363d}}
*{box-sizing:border-box}
body{margin:0;padding:12px;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header h1{font-size:20px;margin:0 0 2px}
.muted{color:var(--muted);font-size:13px;margin:2px 0}
.summary{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0 2px}
.summary span{padding:2px 10px;border-radius:12px;font-weight:600;font-size:14px;color:#fff}
.is-ready,.count.state-up,.count.mode-ok{background:var(--up)}
.not-ready,.count.state-down,.count.mode-bad{background:var(--down)}
.count.state-unknown{background:var(--unknown)}
#conn{background:var(--down);color:#fff;padding:6px 10px;border-radius:6px;margin:8px 0}
#pools{display:grid;gap:12px;grid-template-columns:repeat(auto-fill,minmax(min(100%,460px),1fr));margin-top:10px}
.pool{background:var(--card);border:1px solid var(--line);border-top:6px solid var(--unknown);border-radius:8px;padding:10px 12px}
.pool.mode-ok{border-top-color:var(--up)}.pool.mode-warn{border-top-color:var(--warn)}.pool.mode-bad{border-top-color:var(--down)}
.pool h2{font-size:17px;margin:0;word-break:break-all}
.pool .type{font-size:13px;color:var(--muted);font-weight:600}
.pool .mode{margin:2px 0;font-weight:600}
.pool.mode-ok .mode{color:var(--up)}.pool.mode-warn .mode{color:var(--warn)}.pool.mode-bad .mode{color:var(--down)}
.members{list-style:none;margin:8px 0 0;padding:0}
.member{border-left:6px solid var(--unknown);padding:6px 8px;margin:6px 0;background:var(--bg);border-radius:4px}
.member.state-up{border-left-color:var(--up)}.member.state-down{border-left-color:var(--down)}
.line{display:flex;flex-wrap:wrap;align-items:center;gap:6px}
.state{display:inline-block;min-width:76px;text-align:center;padding:1px 8px;border-radius:10px;color:#fff;font-weight:700;text-transform:uppercase;font-size:13px;background:var(--unknown)}
.state-up .state{background:var(--up)}.state-down .state{background:var(--down)}
.addr{font:600 15px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.serve{font-size:12px;font-weight:600;padding:0 6px;border-radius:8px;border:1px solid var(--up);color:var(--up)}
.not-served .serve{border-color:var(--muted);color:var(--muted)}
.not-served .addr{text-decoration:line-through;text-decoration-thickness:1px;color:var(--muted)}
.tag{font-size:12px;font-weight:600;padding:0 6px;border-radius:8px;background:var(--line)}
.tag.override{background:var(--warn);color:#fff}
.detail{font-size:13px;margin-top:2px;word-break:break-word}
.result.ok{color:var(--up)}.result.fail{color:var(--down)}
.check{font-family:ui-monospace,monospace;font-size:12px}
.verdicts{list-style:none;margin:2px 0 0;padding:0;font-size:12px}
.verdict .vstate{display:inline-block;min-width:40px;font-weight:700;text-transform:uppercase}
.verdict.state-up .vstate{color:var(--up)}.verdict.state-down .vstate{color:var(--down)}
.verdict .inst{font-family:ui-monospace,monospace}
.cluster-degraded{background:var(--warn);color:#fff;padding:4px 10px;border-radius:6px;margin:6px 0}
.balance{display:flex;flex-wrap:wrap;gap:4px 12px;margin-top:4px;font-size:12px;color:var(--muted)}
.spark{display:inline-flex;align-items:center;gap:4px}
.spark svg{width:96px;height:20px;color:var(--up);background:var(--card);border-radius:2px}
.spark .now{color:var(--fg);font-weight:600;font-variant-numeric:tabular-nums}
.resolvers{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin-top:12px;overflow-x:auto}
.resolvers h2{font-size:17px;margin:0}
.resolvers table{border-collapse:collapse;width:100%;font-size:14px;margin-top:6px}
.resolvers th,.resolvers td{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line)}
.resolvers .addr{font-size:14px}
.tag.heavy{background:var(--warn);color:#fff}
`;

// ---------------------------------------------------------------------------------------------
// The balance charts: per member, three sparklines over the history window (first-position share,
// effective weight, reported load), each with its current value. Inline SVG, drawn by the server:
// no script, no external asset, nothing the page's Content-Security-Policy has to allow.

const SPARK_W = 96;
const SPARK_H = 20;

function seriesByMember(history: BalanceHistoryView | undefined): Map<string, MemberSeries> | undefined {
  if (!history) return undefined;
  const out = new Map<string, MemberSeries>();
  for (const p of history.pools) for (const m of p.members) out.set(memberKey(p.zone, p.name, p.type, m.address), m);
  return out;
}

/**
 * A sparkline of `values` (oldest first) from 0 to `max`; a null breaks the
 * line (no value then). Coordinates only: the path data holds numbers, never text.
 */
export function sparkline(values: readonly (number | null)[], max: number, label: string): string {
  const n = values.length;
  const top = max > 0 && Number.isFinite(max) ? max : 1;
  const x = (i: number) => (n <= 1 ? SPARK_W : (i * SPARK_W) / (n - 1)).toFixed(1);
  const y = (v: number) => (SPARK_H - 1 - (Math.min(Math.max(v, 0), top) / top) * (SPARK_H - 2)).toFixed(1);
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${x(i)} ${y(v)}`;
    pen = true;
  });
  // A lone point is drawn as a dot, so a fresh member shows something.
  const single = values.filter((v) => v !== null && Number.isFinite(v)).length === 1;
  const path = d === '' ? '' : `<path d="${d}" fill="none" stroke="currentColor" stroke-width="${single ? 3 : 1.5}" stroke-linecap="round"/>`;
  return `<svg class="sparkline" viewBox="0 0 ${SPARK_W} ${SPARK_H}" role="img" aria-label="${escapeHtml(label)}" preserveAspectRatio="none"><line x1="0" y1="${SPARK_H - 0.5}" x2="${SPARK_W}" y2="${SPARK_H - 0.5}" stroke="currentColor" stroke-opacity="0.25"/>${path}</svg>`;
}

const lastValue = (values: readonly (number | null)[]): number | null => {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i]!;
  return null;
};
const maxOf = (values: readonly (number | null)[]): number => values.reduce<number>((a, v) => (v !== null && v > a ? v : a), 0);
const num = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(2));

/** One member's balance charts: first-position share, effective weight, reported load, over the history window. */
export function renderBalance(m: MemberSnapshot, series: MemberSeries | undefined): string {
  const share = series?.firstShare ?? [];
  const weight = series?.effectiveWeight ?? [];
  const load = series?.load ?? [];
  const shareNow = m.firstShare ?? lastValue(share);
  const loadNow = m.load ?? lastValue(load);
  const chart = (kind: 'first' | 'weight' | 'load', title: string, values: readonly (number | null)[], max: number, text: string) =>
    `<span class="spark spark-${kind}" title="${escapeHtml(title)}">${kind} ${sparkline(values, max, title)} <span class="now">${escapeHtml(text)}</span></span>`;
  return `<div class="balance">${[
    chart('first', 'share of first positions over the last minutes', share, 1, shareNow === null ? '–' : `${Math.round(shareNow * 100)}%`),
    chart('weight', `effective weight over the last minutes (configured ${m.weight})`, weight, Math.max(maxOf(weight), m.effectiveWeight, m.weight), num(m.effectiveWeight)),
    chart('load', 'load reported by the backend over the last minutes', load, Math.max(1, maxOf(load)), loadNow === null ? '–' : num(loadNow)),
  ].join('')}</div>`;
}

/** Re-fetches the page and swaps the live part in; shows a banner while the server cannot be reached. */
function script(refreshMs: number): string {
  return `(function(){
var every=${Math.max(250, Math.floor(refreshMs))};
function tick(){
fetch(location.pathname,{cache:'no-store',headers:{accept:'text/html'}})
.then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text();})
.then(function(t){
var fresh=new DOMParser().parseFromString(t,'text/html').getElementById('live');
var old=document.getElementById('live');
if(fresh&&old)old.replaceWith(document.importNode(fresh,true));
document.getElementById('conn').hidden=true;
})
.catch(function(e){var c=document.getElementById('conn');c.textContent='Cannot reach rrdns ('+e.message+'): showing the last state received.';c.hidden=false;})
.finally(function(){setTimeout(tick,every);});
}
setTimeout(tick,every);
})();`;
}

export function renderStatusPage(d: StatusPageData): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>rrdns status</title>
<link rel="icon" href="data:,">
<noscript><meta http-equiv="refresh" content="${Math.max(1, Math.round(d.refreshMs / 1000))}"></noscript>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>rrdns status</h1>
</header>
<div id="conn" role="alert" hidden></div>
${renderLive(d)}
<script nonce="${escapeHtml(d.nonce)}">${script(d.refreshMs)}</script>
</body>
</html>
`;
}
