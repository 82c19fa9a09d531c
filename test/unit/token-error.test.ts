// A refusal's cause quotes claim and header values a client chose: cut short, and still text.
import t from 'tap';
import { quotedForLog } from '../../src/auth/token-error.ts';

/** Whether `text` holds a UTF-16 surrogate without its other half (written to a log as U+FFFD). */
function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

t.test('quotedForLog cuts a long value short without splitting a character', async (t) => {
  const cases: [string, unknown][] = [
    ['an emoji across the cut', `${'a'.repeat(38)}😀 and more`],
    ['emojis only', '😀'.repeat(30)],
    ['an emoji just before the cut', `${'a'.repeat(37)}😀 and more`],
  ];
  for (const [what, value] of cases) {
    const quoted = quotedForLog(value);
    t.notOk(hasLoneSurrogate(quoted), `${what}: no half character (${JSON.stringify(quoted)})`);
    t.ok(quoted.length <= 43, `${what}: short (${quoted.length} characters)`);
    t.ok(quoted.endsWith('...'), `${what}: says it was cut`);
  }
  t.equal(quotedForLog('short'), '"short"', 'a short value whole');
  t.equal(quotedForLog(undefined), 'undefined', 'a missing claim');
});
