/** A plain SVG line chart of load per backend over time: no library, readable on GitHub and in the status page style. */

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

export interface ChartOptions {
  title: string;
  /** Series per backend, one value per second. */
  series: number[][];
  labels: string[];
  yLabel: string;
  /** Seconds per plotted point (values are averaged). */
  smooth: number;
  /** Vertical markers: [second, text]. */
  marks: [number, string][];
}

export function lineChart(o: ChartOptions): string {
  const width = 720;
  const height = 280;
  const left = 50;
  const right = 150;
  const top = 30;
  const bottom = 35;
  const points = o.series.map((s) => {
    const out: number[] = [];
    for (let i = 0; i + o.smooth <= s.length; i += o.smooth) out.push(s.slice(i, i + o.smooth).reduce((a, b) => a + b, 0) / o.smooth);
    return out;
  });
  const seconds = o.series[0]!.length;
  const yMax = Math.max(0.01, ...points.flat()) * 1.1;
  const x = (sec: number) => left + (sec / seconds) * (width - left - right);
  const y = (v: number) => top + (1 - v / yMax) * (height - top - bottom);
  const lines = points
    .map((p, b) => `<polyline fill="none" stroke="${COLOURS[b % COLOURS.length]}" stroke-width="1.5" points="${p.map((v, i) => `${x((i + 0.5) * o.smooth).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`)
    .join('\n');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = yMax * f;
    return `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${left - 5}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`;
  });
  const xTicks = Array.from({ length: 7 }, (_, i) => Math.round((seconds * i) / 6)).map((s) => `<text x="${x(s)}" y="${height - bottom + 15}" text-anchor="middle">${s}s</text>`);
  const marks = o.marks.map(([s, text]) => `<line x1="${x(s)}" x2="${x(s)}" y1="${top}" y2="${height - bottom}" stroke="#888" stroke-dasharray="4 3"/><text x="${x(s) + 3}" y="${top + 10}">${text}</text>`);
  const legend = o.labels.map((l, b) => `<rect x="${width - right + 10}" y="${top + b * 18}" width="12" height="3" fill="${COLOURS[b % COLOURS.length]}"/><text x="${width - right + 28}" y="${top + b * 18 + 5}">${l}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="18" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>
${ticks.join('\n')}
${xTicks.join('\n')}
<text x="12" y="${top + (height - top - bottom) / 2}" transform="rotate(-90 12 ${top + (height - top - bottom) / 2})" text-anchor="middle">${escapeXml(o.yLabel)}</text>
${lines}
${marks.join('\n')}
${legend.join('\n')}
</svg>
`;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
