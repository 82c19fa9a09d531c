/** A bad setting. `message` is the line to print: `PORT: must be an integer from 0 to 65535, got "abc"`. */
export class ConfigError extends Error {
  readonly code = 'ERR_RELAY_CONFIG';
  /** The environment variable at fault. */
  readonly variable: string;
  /** What is wrong with it, without the variable's name. */
  readonly problem: string;

  constructor(variable: string, problem: string, options?: ErrorOptions) {
    super(`${variable}: ${problem}`, options);
    this.name = 'ConfigError';
    this.variable = variable;
    this.problem = problem;
  }
}

/** Quotes a user's value for an error line, cut short so that one line stays one line. */
export function shown(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
}
