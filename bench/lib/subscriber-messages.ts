// What the harness and a subscriber process say to each other over the fork's IPC channel.
import type { Histogram } from './histogram.ts';

/** One subscriber: its token, and the tenant whose rows it must receive (null: every row). */
export interface SubscriberSpec {
  readonly token: string;
  readonly tenant: string | null;
}

/** Harness → subscriber process. */
export type SubscriberCommand =
  | {
      readonly type: 'connect';
      readonly host: string;
      readonly port: number;
      readonly dialect: string;
      readonly subscribers: readonly SubscriberSpec[];
      /** Source addresses to spread the connections over (127.0.0.x). */
      readonly localAddresses: readonly string[];
      /** Connections being opened at once. */
      readonly concurrency: number;
    }
  /** Starts a new measurement window: latencies and counts from zero. */
  | { readonly type: 'begin-window' }
  /** Counts so far in the window, for progress. */
  | { readonly type: 'progress' }
  /** Losses and duplicates for rows [low, high], given how many rows each tenant had. */
  | { readonly type: 'settle'; readonly low: number; readonly high: number; readonly rowsByTenant: Record<string, number> }
  | { readonly type: 'close' };

/** Subscriber process → harness. */
export type SubscriberReport =
  | { readonly type: 'connected'; readonly opened: number; readonly failed: number; readonly firstError?: string }
  | { readonly type: 'progress'; readonly events: number; readonly withoutEvents: number; readonly closed: number; readonly histogram: Histogram }
  | {
      readonly type: 'settled';
      readonly missing: number;
      readonly duplicates: number;
      readonly events: number;
      readonly histogram: Histogram;
      /** When the window's last event arrived (µs of CLOCK_MONOTONIC), 0 if none did. */
      readonly lastEventUs: number;
    }
  | { readonly type: 'closed' };
