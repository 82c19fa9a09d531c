// Latency histogram: log-spaced buckets 2% wide from 1 µs to beyond an hour, a fixed array that
// processes add together, so percentiles of millions of samples cost neither memory nor sorting.

const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1200;

/** Counts per bucket; plain numbers so that it crosses process boundaries as JSON. */
export interface Histogram {
  readonly counts: number[];
  count: number;
  maxUs: number;
}

/** An empty histogram. */
export function createHistogram(): Histogram {
  return { counts: new Array<number>(BUCKETS).fill(0), count: 0, maxUs: 0 };
}

/** Records one latency in microseconds. */
export function recordLatency(histogram: Histogram, us: number): void {
  recordInBucket(histogram, bucketOf(us), us);
}

/** The bucket of a latency in microseconds: work it out once for several histograms (a logarithm each). */
export function bucketOf(us: number): number {
  return us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GROWTH));
}

/** Records one latency in microseconds whose bucket is known. */
export function recordInBucket(histogram: Histogram, bucket: number, us: number): void {
  histogram.counts[bucket]! += 1;
  histogram.count += 1;
  if (us > histogram.maxUs) histogram.maxUs = us;
}

/** Adds `other` into `into`. */
export function mergeHistogram(into: Histogram, other: Histogram): void {
  for (let i = 0; i < BUCKETS; i++) into.counts[i]! += other.counts[i] ?? 0;
  into.count += other.count;
  into.maxUs = Math.max(into.maxUs, other.maxUs);
}

/** The latency in µs below which `fraction` of the samples fall (upper edge of its bucket). */
export function percentileUs(histogram: Histogram, fraction: number): number {
  if (histogram.count === 0) return Number.NaN;
  const rank = Math.ceil(fraction * histogram.count);
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += histogram.counts[i]!;
    if (seen >= rank) return Math.min(GROWTH ** i, histogram.maxUs);
  }
  return histogram.maxUs;
}

/** p50, p95, p99 and max in milliseconds, rounded to µs. */
export function latencySummaryMs(histogram: Histogram): { p50: number; p95: number; p99: number; max: number } {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    p50: ms(percentileUs(histogram, 0.5)),
    p95: ms(percentileUs(histogram, 0.95)),
    p99: ms(percentileUs(histogram, 0.99)),
    max: ms(histogram.maxUs),
  };
}
