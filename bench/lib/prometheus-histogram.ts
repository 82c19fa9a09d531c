// A Prometheus histogram read from a system's /metrics text, and its percentiles over a step (the
// difference of two scrapes). The bench uses it for what the system itself measures: pg-relay's
// commit-to-send lag (relay_delivery_lag_seconds), the part of the latency that is the relay's.

/** Cumulative counts by upper bound (seconds; Infinity for +Inf). */
export type BucketCounts = ReadonlyMap<number, number>;

/** The `<name>_bucket{le="..."}` lines of `text`; labels other than `le` are not expected. */
export function parseBuckets(text: string, name: string): BucketCounts {
  const buckets = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const match = /le="([^"]+)"\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const bound = match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]);
    buckets.set(bound, Number(match[2]));
  }
  return buckets;
}

/** What was observed between two scrapes. */
export function bucketsBetween(before: BucketCounts, after: BucketCounts): BucketCounts {
  return new Map([...after].map(([bound, count]) => [bound, count - (before.get(bound) ?? 0)]));
}

/**
 * The upper bound, in ms, of the bucket holding the `fraction` percentile: the true percentile is
 * at most this (Infinity past the last finite bound; NaN when nothing was observed).
 */
export function bucketPercentileMs(buckets: BucketCounts, fraction: number): number {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Number.POSITIVE_INFINITY) ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = Math.ceil(fraction * total);
  const bound = bounds.find((candidate) => (buckets.get(candidate) ?? 0) >= rank) ?? Number.POSITIVE_INFINITY;
  return bound * 1000;
}
