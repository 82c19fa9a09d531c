/** start() gave up because stop() was called meanwhile: the relay never served, and nothing of it runs. */
export class StartAbortedError extends Error {
  readonly code = 'ERR_RELAY_START_ABORTED';

  constructor(options?: ErrorOptions) {
    super('the relay was stopped while it was starting', options);
    this.name = 'StartAbortedError';
  }
}
