/**
 * Quotes a value for a POSIX shell: the result is always one word, taken literally.
 * Every value interpolated into a remote command goes through here.
 */
export function shq(value: string | number): string {
  const text = String(value);
  if (text !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Joins command words, quoting each. */
export function cmd(...words: (string | number)[]): string {
  return words.map(shq).join(" ");
}
