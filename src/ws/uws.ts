import uWS from 'uWebSockets.js';

/**
 * uWebSockets.js, refusing its pure-JS fallback: when the native binary fails to load, the package
 * silently serves a slow, incomplete shim (see shared/STACK.md), which must never carry traffic.
 */
export function loadNativeUws(): typeof uWS {
  const native =
    typeof uWS.getParts === 'function' &&
    typeof uWS.SSLApp === 'function' &&
    typeof (uWS as { DEDICATED_COMPRESSOR?: unknown }).DEDICATED_COMPRESSOR === 'number';
  if (!native) {
    throw new Error(
      'uWebSockets.js: the native binary did not load and only the JS fallback is available ' +
        `(Node ${process.versions.node}, ABI ${process.versions.modules}; needs Node 20 on glibc x64)`,
    );
  }
  return uWS;
}
