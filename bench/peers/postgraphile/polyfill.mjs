// Loaded before server.mjs with
//   node --import ./bench/peers/postgraphile/polyfill.mjs bench/peers/postgraphile/server.mjs
// because both lines below must hold before grafast's modules load (static imports run first).

// PostGraphile 5.1.5 declares Node >= 22; on Node 20 the one missing piece is
// Promise.withResolvers (ES2024, used by grafast, grafserv and @dataplan/pg): without it the first
// subscription fails with "Promise.withResolvers is not a function". A no-op where Node has it.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

// Grafast's production mode (its default, which it announces on stderr when GRAPHILE_ENV is
// unset): no development-only checks in the measured path. An explicit GRAPHILE_ENV wins.
process.env.GRAPHILE_ENV ??= 'production';
