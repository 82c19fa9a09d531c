/**
 * The `ws://` URL of the relay listening on `host` and `port`, as a client writes it: an IPv6
 * address in brackets (`ws://[::1]:8080/ws`), without which a client's URL parser refuses it.
 */
export function webSocketUrl(host: string, port: number): string {
  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `ws://${address}:${port}/ws`;
}
