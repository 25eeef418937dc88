/**
 * JSON numbers are read as JavaScript numbers, which hold integers exactly only up to 2^53 − 1: a larger one (a
 * nanosecond timestamp, a 64-bit id) would be rounded without a word. Request bodies are scanned for such integers
 * before they are parsed, and refused with a hint to send them as strings.
 */

/** The first integer literal outside strings that a JavaScript number cannot hold exactly, or null. */
export function firstUnsafeInteger(text: string): string | null {
  const number = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) {
      number.lastIndex = i;
      const m = number.exec(text);
      if (!m) {
        i++;
        continue;
      }
      const literal = m[0];
      if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(Number(literal))) return literal;
      i += literal.length;
      continue;
    }
    i++;
  }
  return null;
}
