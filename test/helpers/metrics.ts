// GET /metrics read back as samples, and a wait for a state that only the gauges show (what a
// replay is waiting for, say): scraped again and again, each scrape awaited, until it holds.
import type { TestRelay } from './relay.ts';

/** The samples of one scrape, by `name{labels}` as written. */
export type MetricSamples = Map<string, number>;

/** Fetches /metrics and parses its samples. */
export async function scrapeMetrics(relay: TestRelay): Promise<{ text: string; samples: MetricSamples; contentType: string | null }> {
  const response = await fetch(`${relay.httpUrl}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  const text = await response.text();
  const samples: MetricSamples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text, samples, contentType: response.headers.get('content-type') };
}

const METRICS_GUARD_MS = 30_000;

/** The first scrape whose samples satisfy `accept`; rejects naming `what` (and the last samples) after the guard. */
export async function waitForMetrics(
  relay: TestRelay,
  accept: (samples: MetricSamples) => boolean,
  what: string,
  timeoutMs = METRICS_GUARD_MS,
): Promise<MetricSamples> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const { samples } = await scrapeMetrics(relay);
    if (accept(samples)) return samples;
    if (Date.now() > giveUpAt) {
      const relays = [...samples].filter(([name]) => name.startsWith('relay_')).map(([name, value]) => `${name} ${value}`);
      throw new Error(`${what}: not within ${timeoutMs} ms; last scrape:\n${relays.join('\n')}`);
    }
  }
}
