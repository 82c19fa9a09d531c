// Isolation, as a property: hundreds of random committed, rolled-back and partly rolled-back writes
// across the example tables, 300 subscribers of six roles (one of them column-masked) with random
// client filters, and every subscriber must receive exactly what an independent oracle
// (test/helpers/expected-events.ts) derives from the rows and the contract: nothing more (no other
// tenant's row, no hidden column), nothing less, in commit order.
//
// Replay a run with ISOLATION_SEED=<seed> (the seed is printed as a TAP comment and in failures).

import t from 'tap';
import type pg from 'pg';
import { createTestDatabase } from '../helpers/database.ts';
import {
  EXAMPLE_GRANTS,
  comparable,
  expectedEvents,
  rowChangeEvents,
  sameEvent,
  withGrant,
  type ChangeEvent,
  type Claims,
  type ExpectedEvent,
  type Row,
} from '../helpers/expected-events.ts';
import { createRandom, seedFrom, type Random } from '../helpers/random.ts';
import { startTestRelay } from '../helpers/relay.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';

const SEED = seedFrom(process.env.ISOLATION_SEED);
const SUBSCRIBERS_PER_ROLE = 50;
const TRANSACTIONS = 400;
/** A guard so that a lost sentinel fails with a message instead of the tap timeout; never awaited to pass. */
const SENTINEL_GUARD_MS = 30_000;

const HOSPITALS = ids('H', 6);
const CUSTOMERS = ids('C', 8);
const MERCHANTS = ids('M', 6);
const DRIVERS = ids('D', 7);
const STATUSES = ['placed', 'accepted', 'picked_up', 'delivered', 'cancelled'] as const;
const PRODUCTS = ['apples', 'bread', 'milk', 'rice', 'soap', 'tea'] as const;
/** The merchant_ids claim of multi-store merchants (the `in`-claim grant on inventory). */
const MULTI_STORE = ['M1', 'M3'];

const AUDITOR_COLUMNS = ['id', 'status', 'hospital_id'] as const;
const ROLES = ['admin', 'hospital', 'customer', 'driver', 'merchant', 'auditor'] as const;
type Role = (typeof ROLES)[number];
const TOPICS = ['orders', 'driver_locations', 'inventory'] as const;
type Topic = (typeof TOPICS)[number];

/** The grants the oracle knows: the example app's, the auditor's mask, and the sentinel for all. */
const GRANTS = ROLES.reduce(
  (table, role) => withGrant(table, 'sentinel', role),
  withGrant(EXAMPLE_GRANTS, 'orders', 'auditor', AUDITOR_COLUMNS),
);

/** Topics a role has no grant on, to try and be refused. */
const FORBIDDEN: Record<Role, readonly Topic[]> = {
  admin: [],
  hospital: ['driver_locations', 'inventory'],
  customer: ['inventory'],
  driver: ['inventory'],
  merchant: ['driver_locations'],
  auditor: ['driver_locations', 'inventory'],
};

function ids(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
}

// ---------------------------------------------------------------------------------------------
// Subscribers
// ---------------------------------------------------------------------------------------------

interface SubscriberPlan {
  readonly name: string;
  readonly role: Role;
  readonly claims: Claims;
  readonly subscriptions: ReadonlyArray<{ topic: Topic; filter?: Record<string, unknown>; leaves?: true }>;
  readonly forbiddenTopic?: Topic;
  readonly unknownTopic?: string;
}

function claimsFor(role: Role, i: number, random: Random): Claims {
  switch (role) {
    case 'admin':
      return { role };
    case 'hospital':
      return { role, hospital_id: HOSPITALS[i % HOSPITALS.length] };
    case 'customer':
      return { role, sub: CUSTOMERS[i % CUSTOMERS.length] };
    case 'driver':
      return { role, sub: DRIVERS[i % DRIVERS.length] };
    case 'auditor':
      return { role, sub: `A${i + 1}` };
    case 'merchant': {
      const own = MERCHANTS[i % MERCHANTS.length];
      // Some run several stores and carry only the list, some carry both, most one store.
      const kind = random.int(0, 4);
      if (kind === 0) return { role, merchant_ids: MULTI_STORE };
      if (kind === 1) return { role, merchant_id: own, merchant_ids: MULTI_STORE };
      return { role, merchant_id: own };
    }
  }
}

/**
 * Topics the subscriber may subscribe to. A merchant without a merchant_id claim stays off
 * `orders`: whether a grant whose claim is missing refuses the subscription or accepts it and
 * sends nothing is not the contract's to say, and not what this test is about.
 */
function grantedTopics(role: Role, claims: Claims): Topic[] {
  if (role === 'merchant' && claims.merchant_id === undefined) return ['inventory'];
  return TOPICS.filter((topic) => GRANTS[role]?.[topic] !== undefined);
}

/** A random client filter over the columns the role sees on the topic. */
function randomFilter(random: Random, role: Role, topic: Topic): Record<string, unknown> {
  const status = (): string => random.pick(STATUSES);
  if (topic === 'orders' && role === 'auditor') {
    return random.pick([
      () => ({ status: status() }),
      () => ({ status: { in: random.sample(STATUSES, 2) } }),
      () => ({ not: { status: status() } }),
      () => ({ or: [{ status: status() }, { hospital_id: random.pick(HOSPITALS) }] }),
      () => ({ hospital_id: { in: random.sample(HOSPITALS, 3) }, status: { ne: status() } }),
    ])();
  }
  if (topic === 'orders') {
    return random.pick([
      () => ({ status: status() }),
      () => ({ status: { in: random.sample(STATUSES, 2) } }),
      () => ({ not: { status: status() } }),
      () => ({ or: [{ status: status() }, { hospital_id: random.pick(HOSPITALS) }] }),
      () => ({ merchant_id: { in: random.sample(MERCHANTS, 3) }, status: { ne: status() } }),
      () => ({ and: [{ customer_id: { in: random.sample(CUSTOMERS, 4) } }, { not: { status: { in: ['cancelled', 'delivered'] } } }] }),
      () => ({ driver_id: random.pick(DRIVERS) }),
    ])();
  }
  if (topic === 'inventory') {
    return random.pick([
      () => ({ quantity: { lte: 5 } }),
      () => ({ quantity: { gt: 3, lte: 10 } }),
      () => ({ or: [{ quantity: 0 }, { product: random.pick(PRODUCTS) }] }),
      () => ({ not: { quantity: { gte: 8 } } }),
      () => ({ merchant_id: random.pick(MERCHANTS) }),
      () => ({ product: { in: random.sample(PRODUCTS, 3) } }),
    ])();
  }
  return random.pick([
    () => ({ speed: { gte: 30 } }),
    () => ({ not: { speed: { lt: 10 } } }),
    () => ({ customer_id: random.pick(CUSTOMERS) }),
    () => ({ or: [{ speed: { lte: 5 } }, { customer_id: { in: random.sample(CUSTOMERS, 2) } }] }),
  ])();
}

function planSubscribers(random: Random): SubscriberPlan[] {
  const plans: SubscriberPlan[] = [];
  for (const role of ROLES) {
    for (let i = 0; i < SUBSCRIBERS_PER_ROLE; i++) {
      const claims = claimsFor(role, i, random);
      const subscriptions = random.someOf(grantedTopics(role, claims)).map((topic) => ({
        topic,
        ...(random.chance(0.45) && { filter: randomFilter(random, role, topic) }),
        ...(random.chance(0.4) && { leaves: true as const }),
      }));
      const forbiddenTopic = FORBIDDEN[role].length > 0 && random.chance(0.3) ? random.pick(FORBIDDEN[role]) : undefined;
      const unknownTopic = role === 'admin' && random.chance(0.3) ? 'no_such_topic' : undefined;
      plans.push({ name: `${role}#${i + 1}`, role, claims, subscriptions, forbiddenTopic, unknownTopic });
    }
  }
  return plans;
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

type Op = 'insert' | 'update' | 'delete';

interface Statement {
  readonly topic: Topic;
  readonly op: Op;
  /** Must return `before` and `after` (to_jsonb of the row, or null) for each row it touches. */
  readonly sql: string;
  readonly params: readonly unknown[];
}

/** The rows as the test believes them to be, to aim writes at rows that exist. */
interface Model {
  orders: Map<string, Row>;
  driver_locations: Map<string, Row>;
  inventory: Map<string, Row>;
}

const KEY: Record<Topic, string> = { orders: 'id', driver_locations: 'driver_id', inventory: 'id' };

function cloneModel(model: Model): Model {
  return { orders: new Map(model.orders), driver_locations: new Map(model.driver_locations), inventory: new Map(model.inventory) };
}

const RETURN_NEW = 'returning null::jsonb as before, to_jsonb(t.*) as after';
const RETURN_BOTH = 'returning to_jsonb(prev.*) as before, to_jsonb(t.*) as after';
const RETURN_OLD = 'returning to_jsonb(t.*) as before, null::jsonb as after';

let counter = 0;

function updateOf(table: Topic, set: string, keyParam: unknown, params: unknown[]): Statement {
  const key = KEY[table];
  return {
    topic: table,
    op: 'update',
    // prev is the statement's snapshot of the row: its values before this update.
    sql: `update ${table} as t set ${set} from ${table} as prev where prev.${key} = t.${key} and t.${key} = $1 ${RETURN_BOTH}`,
    params: [keyParam, ...params],
  };
}

function deleteOf(table: Topic, keyValue: unknown): Statement {
  return { topic: table, op: 'delete', sql: `delete from ${table} as t where t.${KEY[table]} = $1 ${RETURN_OLD}`, params: [keyValue] };
}

function insertOrder(random: Random, id = `O${++counter}`): Statement {
  return {
    topic: 'orders',
    op: 'insert',
    sql: `insert into orders as t (id, hospital_id, customer_id, merchant_id, driver_id, status, rider) values ($1, $2, $3, $4, $5, $6, $7) ${RETURN_NEW}`,
    params: [
      id,
      random.pick(HOSPITALS),
      random.pick(CUSTOMERS),
      random.pick(MERCHANTS),
      random.chance(0.3) ? null : random.pick(DRIVERS),
      random.pick(['placed', 'accepted']),
      random.chance(0.5) ? JSON.stringify({ name: `rider ${random.int(1, 99)}`, seats: random.int(1, 3) }) : null,
    ],
  };
}

function orderStatement(random: Random, model: Model): Statement {
  const existing = [...model.orders.keys()];
  if (existing.length < 5 || random.chance(0.25)) return insertOrder(random);
  const id = random.pick(existing);
  const choice = random.int(0, 99);
  if (choice < 30) {
    return updateOf('orders', `status = $2::text, delivered_at = case when $2::text = 'delivered' then now() else t.delivered_at end`, id, [
      random.pick(STATUSES),
    ]);
  }
  // Columns the auditor does not see: such updates must not reach it.
  if (choice < 45) return updateOf('orders', 'driver_id = $2', id, [random.chance(0.2) ? null : random.pick(DRIVERS)]);
  if (choice < 52) return updateOf('orders', 'rider = $2::jsonb', id, [JSON.stringify({ name: `rider ${random.int(1, 99)}` })]);
  if (choice < 57) return updateOf('orders', 'customer_id = $2', id, [random.pick(CUSTOMERS)]);
  if (choice < 62) return updateOf('orders', 'hospital_id = $2', id, [random.pick(HOSPITALS)]);
  // Changes nothing: publishes nothing.
  if (choice < 70) return updateOf('orders', 'status = t.status', id, []);
  if (choice < 78) {
    // Several rows in one statement: their events follow the statement's row order.
    return {
      topic: 'orders',
      op: 'update',
      sql: `update orders as t set status = $2 from orders as prev where prev.id = t.id and t.hospital_id = $1 and t.status = 'placed' ${RETURN_BOTH}`,
      params: [random.pick(HOSPITALS), 'accepted'],
    };
  }
  if (choice < 88) return updateOf('orders', 'status = $2, driver_id = $3', id, [random.pick(STATUSES), random.pick(DRIVERS)]);
  return deleteOf('orders', id);
}

function locationStatement(random: Random, model: Model): Statement {
  const present = [...model.driver_locations.keys()];
  const absent = DRIVERS.filter((driver) => !model.driver_locations.has(driver));
  const coordinate = (base: number): number => base + random.int(0, 99_999) / 100_000;
  if (absent.length > 0 && (present.length === 0 || random.chance(0.3))) {
    return {
      topic: 'driver_locations',
      op: 'insert',
      sql: `insert into driver_locations as t (driver_id, order_id, customer_id, lat, lng, heading, speed) values ($1, $2, $3, $4, $5, $6, $7) ${RETURN_NEW}`,
      params: [random.pick(absent), `O${random.int(1, 50)}`, random.pick(CUSTOMERS), coordinate(52), coordinate(13), random.int(0, 359), random.int(0, 60)],
    };
  }
  const driver = random.pick(present);
  const choice = random.int(0, 99);
  if (choice < 55) {
    return updateOf('driver_locations', 'lat = $2, lng = $3, heading = $4, speed = $5', driver, [
      coordinate(52),
      coordinate(13),
      random.int(0, 359),
      random.int(0, 60),
    ]);
  }
  if (choice < 75) return updateOf('driver_locations', 'order_id = $2, customer_id = $3', driver, [`O${random.int(1, 50)}`, random.pick(CUSTOMERS)]);
  if (choice < 85) return updateOf('driver_locations', 'speed = t.speed', driver, []);
  return deleteOf('driver_locations', driver);
}

function insertInventory(random: Random, id: string, merchant: string, quantity: number, threshold: number): Statement {
  return {
    topic: 'inventory',
    op: 'insert',
    sql: `insert into inventory as t (id, merchant_id, product, quantity, low_stock_threshold) values ($1, $2, $3, $4, $5) ${RETURN_NEW}`,
    params: [id, merchant, random.pick(PRODUCTS), quantity, threshold],
  };
}

function inventoryStatement(random: Random, model: Model): Statement {
  const existing = [...model.inventory.values()];
  if (existing.length < 4 || random.chance(0.15)) {
    return insertInventory(random, `I${++counter}`, random.pick(MERCHANTS), random.int(0, 20), random.int(2, 6));
  }
  const row = random.pick(existing);
  const threshold = Number(row.low_stock_threshold);
  const choice = random.int(0, 99);
  if (choice < 70) {
    // Around the threshold, so that low_stock / out_of_stock / restocked happen often.
    const quantity = random.pick([0, 0, threshold, Math.max(0, threshold - 1), threshold + 1, threshold + random.int(2, 10), random.int(0, 20), Number(row.quantity)]);
    return updateOf('inventory', 'quantity = $2', row.id, [quantity]);
  }
  if (choice < 85) return updateOf('inventory', 'product = $2', row.id, [random.pick(PRODUCTS)]);
  if (choice < 90) return updateOf('inventory', 'merchant_id = $2', row.id, [random.pick(MERCHANTS)]);
  return deleteOf('inventory', row.id);
}

function randomStatement(random: Random, model: Model): Statement {
  const table = random.int(0, 99);
  if (table < 45) return orderStatement(random, model);
  if (table < 70) return locationStatement(random, model);
  return inventoryStatement(random, model);
}

interface WriteStats {
  transactions: number;
  committed: number;
  rolledBack: number;
  savepointsRolledBack: number;
  statements: number;
}

/** Runs one statement, updates the model, and returns the events the oracle says it publishes. */
async function execute(client: pg.PoolClient, model: Model, statement: Statement): Promise<ChangeEvent[]> {
  const { rows } = await client.query<{ before: Row | null; after: Row | null }>(statement.sql, [...statement.params]);
  const events: ChangeEvent[] = [];
  const table = model[statement.topic];
  for (const { before, after } of rows) {
    events.push(...rowChangeEvents(statement.topic, statement.op, before, after));
    const key = String((after ?? before)?.[KEY[statement.topic]]);
    if (after) table.set(key, after);
    else table.delete(key);
  }
  return events;
}

/**
 * One transaction from one connection, so that commit order is the order of this loop: committed,
 * rolled back, or committed with a rolled-back savepoint around one statement. Each statement is
 * made against the model its predecessors left. Returns the events the transaction commits.
 */
async function runTransaction(
  client: pg.PoolClient,
  state: { model: Model },
  statements: ReadonlyArray<(model: Model) => Statement>,
  outcome: 'commit' | 'rollback' | 'savepoint',
  random: Random,
  stats: WriteStats,
): Promise<ChangeEvent[]> {
  const start = cloneModel(state.model);
  let events: ChangeEvent[] = [];
  stats.transactions++;
  await client.query('begin');
  const savepointAt = outcome === 'savepoint' ? random.int(0, statements.length - 1) : -1;
  for (const [index, makeStatement] of statements.entries()) {
    stats.statements++;
    const statement = makeStatement(state.model);
    if (index === savepointAt) {
      const before = cloneModel(state.model);
      await client.query('savepoint s');
      await execute(client, state.model, statement);
      await client.query('rollback to savepoint s');
      state.model = before;
      stats.savepointsRolledBack++;
      continue;
    }
    events = events.concat(await execute(client, state.model, statement));
  }
  if (outcome === 'rollback') {
    await client.query('rollback');
    state.model = start;
    stats.rolledBack++;
    return [];
  }
  await client.query('commit');
  stats.committed++;
  return events;
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

interface Subscriber {
  readonly plan: SubscriberPlan;
  readonly client: TestClient;
}

async function subscribe(subscriber: Subscriber, t: { fail(message: string): unknown }): Promise<void> {
  const { plan, client } = subscriber;
  let ref = 0;
  const requests: Array<{ ref: number; topic: string; expect: 'subscribed' | 'forbidden' | 'unknown_topic' }> = [];
  const request = (topic: string, expect: 'subscribed' | 'forbidden' | 'unknown_topic', filter?: unknown, leaves?: true): void => {
    ref++;
    client.send({ type: 'subscribe', topic, ref, ...(filter !== undefined ? { filter } : {}), ...(leaves && { leaves }) });
    requests.push({ ref, topic, expect });
  };
  for (const { topic, filter, leaves } of plan.subscriptions) request(topic, 'subscribed', filter, leaves);
  request('sentinel', 'subscribed');
  if (plan.forbiddenTopic) request(plan.forbiddenTopic, 'forbidden');
  if (plan.unknownTopic) request(plan.unknownTopic, 'unknown_topic');
  for (const { ref, topic, expect } of requests) {
    const reply = await client.next((frame) => frame.ref === ref);
    const ok = expect === 'subscribed' ? reply.type === 'subscribed' : reply.type === 'error' && reply.code === expect;
    if (!ok) {
      t.fail(`${plan.name} ${JSON.stringify(plan.claims)} subscribing to ${topic}: expected ${expect}, got ${JSON.stringify(reply)}`);
    }
  }
}

/** Every frame the client got before the sentinel, in order; fails if the sentinel never comes. */
async function framesBeforeSentinel(subscriber: Subscriber, diagnose: () => Promise<string>): Promise<Frame[]> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const got = subscriber.client.buffered().length;
      const { name, claims } = subscriber.plan;
      void diagnose().then((state) =>
        reject(new Error(`seed ${SEED}: ${name} ${JSON.stringify(claims)} got no sentinel within ${SENTINEL_GUARD_MS} ms (${got} frames buffered)\n${state}`)),
      );
    }, SENTINEL_GUARD_MS);
  });
  try {
    const sentinel = await Promise.race([
      subscriber.client.next((frame) => frame.type === 'event' && frame.topic === 'sentinel'),
      guard,
    ]);
    if (sentinel.event !== 'end' || JSON.stringify(sentinel.data) !== '{}') {
      throw new Error(`${subscriber.plan.name}: unexpected sentinel frame ${JSON.stringify(sentinel)}`);
    }
  } finally {
    clearTimeout(timer);
  }
  return [...subscriber.client.buffered()];
}

/** The first difference between what a subscriber should get and got, described for a person. */
function firstDifference(plan: SubscriberPlan, committed: readonly ChangeEvent[], frames: readonly Frame[]): string | null {
  const strangers = frames.filter((frame) => frame.type !== 'event' && frame.type !== 'left');
  if (strangers.length > 0) return `unexpected frame ${JSON.stringify(strangers[0])}`;
  const subscribed = new Set(plan.subscriptions.map(({ topic }) => topic));
  const elsewhere = frames.find((frame) => !subscribed.has(frame.topic as Topic));
  if (elsewhere) return `an event of topic ${String(elsewhere.topic)}, not subscribed: ${JSON.stringify(elsewhere)}`;
  for (const { topic, filter, leaves } of plan.subscriptions) {
    const expected = expectedEvents(GRANTS, { role: plan.role, claims: plan.claims, topic, filter, leaves }, committed);
    const received = frames.filter((frame) => frame.topic === topic).map(comparable);
    const where = `topic ${topic}${filter ? ` filter ${JSON.stringify(filter)}` : ' (no filter)'}${leaves ? ', leaves' : ''}`;
    const length = Math.max(expected.length, received.length);
    for (let i = 0; i < length; i++) {
      const want: ExpectedEvent | undefined = expected[i];
      const got: ExpectedEvent | undefined = received[i];
      if (want && got && sameEvent(want, got)) continue;
      return (
        `${where}: event #${i} (of ${expected.length} expected, ${received.length} received) differs\n` +
        `    expected: ${want ? JSON.stringify(want) : 'nothing more'}\n` +
        `    received: ${got ? JSON.stringify(got) : 'nothing more'}`
      );
    }
  }
  return null;
}

/** Keys the auditor saw outside its mask (must be none), and updates it got with nothing visible changed. */
function maskViolations(frames: readonly Frame[]): string[] {
  const allowed = new Set<string>(AUDITOR_COLUMNS);
  const problems: string[] = [];
  for (const frame of frames) {
    if (frame.topic !== 'orders') continue;
    const keys = [
      ...Object.keys((frame.data as Row | undefined) ?? {}),
      ...Object.keys((frame.old as Row | undefined) ?? {}),
      ...((frame.changed as string[] | undefined) ?? []),
    ];
    const hidden = keys.filter((key) => !allowed.has(key));
    if (hidden.length > 0) problems.push(`saw hidden column(s) ${[...new Set(hidden)].join(', ')} in ${JSON.stringify(frame)}`);
    if (frame.event === 'update' && !(Array.isArray(frame.changed) && frame.changed.length > 0)) {
      problems.push(`got an update with no visible change: ${JSON.stringify(frame)}`);
    }
  }
  return problems;
}

t.test(`isolation: every subscriber gets exactly its own events (ISOLATION_SEED=${SEED})`, async (t) => {
  t.comment(`ISOLATION_SEED=${SEED}`);
  const random = createRandom(SEED);

  const db = await createTestDatabase(t);
  await db.pool.query(`select relay.allow('orders', 'auditor', '{}', $1::text[])`, [[...AUDITOR_COLUMNS]]);
  for (const role of ROLES) await db.pool.query(`select relay.allow('sentinel', $1)`, [role]);
  const relay = await startTestRelay(t, { LOG_LEVEL: 'warn' }, db);

  // Subscribers, all subscribed before the first write.
  const plans = planSubscribers(random);
  const subscribers: Subscriber[] = [];
  for (let i = 0; i < plans.length; i += 50) {
    const batch = plans.slice(i, i + 50);
    const clients = await Promise.all(batch.map((plan) => relay.connect(plan.claims)));
    subscribers.push(...batch.map((plan, j) => ({ plan, client: clients[j] as TestClient })));
  }
  await Promise.all(subscribers.map((subscriber) => subscribe(subscriber, t)));

  // Writes, sequential from one connection: commit order is the order of this loop.
  const stats: WriteStats = { transactions: 0, committed: 0, rolledBack: 0, savepointsRolledBack: 0, statements: 0 };
  const committed: ChangeEvent[] = [];
  const client = await db.pool.connect();
  try {
    const state = { model: { orders: new Map(), driver_locations: new Map(), inventory: new Map() } as Model };
    for (let i = 0; i < TRANSACTIONS; i++) {
      const count = random.pick([1, 1, 1, 2, 2, 3, 4]);
      const roll = random.next();
      const outcome = roll < 0.12 ? 'rollback' : roll < 0.22 ? 'savepoint' : 'commit';
      const statements = Array.from({ length: count }, () => (model: Model) => randomStatement(random, model));
      committed.push(...(await runTransaction(client, state, statements, outcome, random, stats)));
    }
    // A fixed tail, so that every kind of event this test is about happens whatever the seed.
    const tail: Statement[] = [
      insertInventory(random, 'I-tail', 'M1', 10, 4),
      updateOf('inventory', 'quantity = $2', 'I-tail', [4]), // low_stock
      updateOf('inventory', 'quantity = $2', 'I-tail', [0]), // out_of_stock
      updateOf('inventory', 'quantity = $2', 'I-tail', [9]), // restocked
      insertOrder(random, 'O-tail'),
      updateOf('orders', 'driver_id = $2', 'O-tail', ['D1']), // hidden from the auditor
      updateOf('orders', 'status = $2', 'O-tail', ['delivered']),
    ];
    for (const statement of tail) committed.push(...(await runTransaction(client, state, [() => statement], 'commit', random, stats)));
    await client.query(`select relay.publish('sentinel', 'end', '{}')`);
  } finally {
    client.release();
  }

  // Collect, then compare each subscriber with the oracle.
  // What the relay itself says, for a failure message: its warnings and its delivery counters.
  let diagnosis: Promise<string> | undefined;
  const diagnose = (): Promise<string> => (diagnosis ??= describeRelayState());
  const describeRelayState = async (): Promise<string> => {
    const warnings = relay.logLines.filter((line) => Number(line.level) >= 40).map((line) => JSON.stringify(line));
    const read = (path: string): Promise<string> =>
      fetch(`${relay.httpUrl}${path}`)
        .then(async (response) => `${response.status} ${await response.text()}`)
        .catch((error: unknown) => `unavailable: ${String(error)}`);
    const health = await read('/health');
    const counters = (await read('/metrics')).split('\n').filter((line) => /^relay_(events|connections |subscriptions)/.test(line));
    return (
      `relay warnings: ${warnings.length === 0 ? 'none' : warnings.slice(0, 20).join('\n  ')}\n` +
      `relay /health: ${health}\nrelay metrics: ${counters.length === 0 ? 'none' : counters.join('; ')}`
    );
  };
  const framesBy = await Promise.all(subscribers.map((subscriber) => framesBeforeSentinel(subscriber, diagnose)));
  const failures: string[] = [];
  let eventsChecked = 0;
  let leftFrames = 0;
  for (const [i, subscriber] of subscribers.entries()) {
    const frames = framesBy[i] as Frame[];
    const { plan } = subscriber;
    eventsChecked += frames.length;
    leftFrames += frames.filter((frame) => frame.type === 'left').length;
    const difference = firstDifference(plan, committed, frames);
    if (difference) failures.push(`${plan.name} claims ${JSON.stringify(plan.claims)}: ${difference}`);
    if (plan.role === 'auditor') {
      for (const problem of maskViolations(frames)) failures.push(`${plan.name} (auditor, columns ${AUDITOR_COLUMNS.join(',')}): ${problem}`);
    }
  }

  const kinds = new Map<string, number>();
  for (const event of committed) kinds.set(`${event.topic}.${event.event}`, (kinds.get(`${event.topic}.${event.event}`) ?? 0) + 1);
  const hiddenOnlyUpdates = committed.filter(
    (event) => event.topic === 'orders' && event.event === 'update' && !event.changed?.some((c) => (AUDITOR_COLUMNS as readonly string[]).includes(c)),
  ).length;
  const subscriptionCount = subscribers.reduce((sum, s) => sum + s.plan.subscriptions.length, 0);
  const filtered = subscribers.reduce((sum, s) => sum + s.plan.subscriptions.filter((sub) => sub.filter).length, 0);
  const leaving = subscribers.reduce((sum, s) => sum + s.plan.subscriptions.filter((sub) => sub.leaves).length, 0);
  const refusals = subscribers.filter((s) => s.plan.forbiddenTopic || s.plan.unknownTopic).length;
  t.comment(
    `seed ${SEED}: ${subscribers.length} subscribers, ${subscriptionCount} subscriptions (+ sentinel; ${filtered} with a client filter, ${leaving} asking for leaves), ` +
      `${refusals} refused subscriptions checked (forbidden / unknown_topic), ` +
      `${stats.transactions} transactions (${stats.committed} committed, ${stats.rolledBack} rolled back, ` +
      `${stats.savepointsRolledBack} savepoints rolled back), ${stats.statements} statements, ` +
      `${committed.length} committed events, ${eventsChecked} delivered events checked (${leftFrames} left frames)`,
  );
  t.comment(`events by kind: ${JSON.stringify(Object.fromEntries([...kinds].sort()))}; orders updates hidden from auditors: ${hiddenOnlyUpdates}`);

  for (const kind of ['inventory.low_stock', 'inventory.out_of_stock', 'inventory.restocked', 'orders.delete', 'driver_locations.delete']) {
    t.ok((kinds.get(kind) ?? 0) > 0, `the writes produced ${kind}`);
  }
  t.ok(hiddenOnlyUpdates > 0, 'some orders updates change only columns hidden from auditors');
  t.ok(leftFrames > 0, 'some updates took rows out of subscriptions asking for leaves');
  t.ok(stats.rolledBack > 0 && stats.savepointsRolledBack > 0, 'some writes were rolled back');
  t.same(
    failures.slice(0, 10),
    [],
    `seed ${SEED}: ${failures.length} of ${subscribers.length} subscribers did not receive exactly their events (first 10 shown)`,
  );
});
