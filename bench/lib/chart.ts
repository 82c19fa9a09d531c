// The fan-out chart: latency percentiles and deliveries per second against the committed write rate,
// one line per system, as a standalone SVG (no plotting dependency for two log-log panels).

export interface ChartSeries {
  readonly name: string;
  readonly points: ReadonlyArray<{ readonly rate: number; readonly p50: number; readonly p99: number; readonly delivered: number }>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const PANEL = { width: 440, height: 300, left: 70, top: 40, right: 20, bottom: 50 };

interface Axis {
  readonly min: number;
  readonly max: number;
}

function logAxis(values: readonly number[]): Axis {
  const positive = values.filter((value) => value > 0 && Number.isFinite(value));
  const min = 10 ** Math.floor(Math.log10(Math.min(...positive)));
  const max = 10 ** Math.ceil(Math.log10(Math.max(...positive)));
  return { min, max: max === min ? min * 10 : max };
}

function scale(axis: Axis, value: number, length: number): number {
  return ((Math.log10(Math.max(value, axis.min)) - Math.log10(axis.min)) / (Math.log10(axis.max) - Math.log10(axis.min))) * length;
}

function label(value: number): string {
  if (value >= 1e6) return `${value / 1e6}M`;
  if (value >= 1e3) return `${value / 1e3}k`;
  return String(value);
}

function panel(
  offsetX: number,
  title: string,
  yTitle: string,
  x: Axis,
  y: Axis,
  lines: ReadonlyArray<{ color: string; dashed: boolean; points: ReadonlyArray<[number, number]> }>,
): string {
  const plotWidth = PANEL.width - PANEL.left - PANEL.right;
  const plotHeight = PANEL.height - PANEL.top - PANEL.bottom;
  const px = (value: number): number => offsetX + PANEL.left + scale(x, value, plotWidth);
  const py = (value: number): number => PANEL.top + plotHeight - scale(y, value, plotHeight);
  const parts: string[] = [
    `<text x="${offsetX + PANEL.width / 2}" y="22" text-anchor="middle" font-weight="bold">${title}</text>`,
    `<rect x="${offsetX + PANEL.left}" y="${PANEL.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
  ];
  for (let tick = x.min; tick <= x.max; tick *= 10) {
    parts.push(
      `<line x1="${px(tick)}" x2="${px(tick)}" y1="${PANEL.top}" y2="${PANEL.top + plotHeight}" stroke="#eee"/>`,
      `<text x="${px(tick)}" y="${PANEL.top + plotHeight + 16}" text-anchor="middle">${label(tick)}</text>`,
    );
  }
  for (let tick = y.min; tick <= y.max; tick *= 10) {
    parts.push(
      `<line x1="${offsetX + PANEL.left}" x2="${offsetX + PANEL.left + plotWidth}" y1="${py(tick)}" y2="${py(tick)}" stroke="#eee"/>`,
      `<text x="${offsetX + PANEL.left - 6}" y="${py(tick) + 4}" text-anchor="end">${label(tick)}</text>`,
    );
  }
  parts.push(
    `<text x="${offsetX + PANEL.left + plotWidth / 2}" y="${PANEL.height - 10}" text-anchor="middle">rows committed per second</text>`,
    `<text transform="translate(${offsetX + 16},${PANEL.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${yTitle}</text>`,
  );
  for (const line of lines) {
    const path = line.points.map(([a, b]) => `${px(a).toFixed(1)},${py(b).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline points="${path}" fill="none" stroke="${line.color}" stroke-width="2"${line.dashed ? ' stroke-dasharray="5,4"' : ''}/>`,
      ...line.points.map(([a, b]) => `<circle cx="${px(a).toFixed(1)}" cy="${py(b).toFixed(1)}" r="3" fill="${line.color}"/>`),
    );
  }
  return parts.join('\n');
}

/** The SVG document for `series`. */
export function fanoutChart(series: readonly ChartSeries[]): string {
  const points = series.flatMap((one) => one.points);
  const x = logAxis(points.map((point) => point.rate));
  const latency = logAxis(points.flatMap((point) => [point.p50, point.p99]));
  const delivered = logAxis(points.map((point) => point.delivered));
  const colored = series.map((one, index) => ({ ...one, color: COLORS[index % COLORS.length]! }));
  const latencyLines = colored.flatMap((one) => [
    { color: one.color, dashed: false, points: one.points.map((p) => [p.rate, p.p99] as [number, number]) },
    { color: one.color, dashed: true, points: one.points.map((p) => [p.rate, p.p50] as [number, number]) },
  ]);
  const deliveredLines = colored.map((one) => ({
    color: one.color,
    dashed: false,
    points: one.points.map((p) => [p.rate, p.delivered] as [number, number]),
  }));
  const legend = colored
    .map(
      (one, index) =>
        `<rect x="${PANEL.left + index * 170}" y="${PANEL.height + 8}" width="12" height="12" fill="${one.color}"/>` +
        `<text x="${PANEL.left + index * 170 + 18}" y="${PANEL.height + 18}">${one.name}</text>`,
    )
    .join('\n');
  const width = PANEL.width * 2;
  const height = PANEL.height + 50;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    panel(0, 'Commit-to-client latency (p99 solid, p50 dashed)', 'milliseconds', x, latency, latencyLines),
    panel(PANEL.width, 'Deliveries per second', 'deliveries/s', x, delivered, deliveredLines),
    legend,
    `<text x="${PANEL.left}" y="${PANEL.height + 40}">fan-out: each row reaches its hospital's subscribers and every admin; where a system kept up, its last point is "as fast as the writers go"</text>`,
    '</svg>',
  ].join('\n');
}
