// How figures are written on the pages (the browser tests read them back).

export const DASH = '—';

/** A rate in [0, 1] as a percentage with two decimals; null: no ratings counted. */
export function percent(rate) {
  return rate === null || rate === undefined ? DASH : `${(rate * 100).toFixed(2)} %`;
}

/** A shop score (1 to 5) with two decimals. */
export function score(mean) {
  return mean === null || mean === undefined ? DASH : mean.toFixed(2);
}

/** An RFC 3339 time as the API sends it (UTC), or a dash. */
export function time(value) {
  return value ? value.replace('T', ' ').replace('Z', ' UTC') : DASH;
}

/** An amount in minor units (fen) with its currency. */
export function money(minor, currency) {
  const sign = minor < 0 ? '-' : '';
  const whole = Math.abs(minor);
  return `${sign}${Math.floor(whole / 100)}.${String(whole % 100).padStart(2, '0')} ${currency}`;
}

/** A fact's topic, ``trustledger.trade.payment_escrowed.v1``, as words ("payment escrowed"). */
export function topic(name) {
  const parts = name.split('.');
  if (parts.length < 4) return name;
  // A trade's own facts need no "trade"; a rating's or a refund's say what they are.
  const [kind, what] = parts.slice(-3, -1);
  return (kind === 'trade' ? what : `${kind} ${what}`).replaceAll('_', ' ');
}

export function yesNo(value) {
  return value ? 'yes' : 'no';
}

/** A date input's value (YYYY-MM-DD) as the end of that day in UTC. */
export function endOfDay(date) {
  return `${date}T23:59:59Z`;
}

/** Now, to the second, as the API takes a time. */
export function now() {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** A figure as the API sends it, to four decimals at most. */
export function number(value) {
  return value === null || value === undefined ? DASH : String(Number(value.toFixed(4)));
}

/** The ranking multiplier: 1 is full weight. */
export function multiplier(value) {
  return `× ${number(value)}`;
}
