// Countdown math, pure (no page, no clock of its own: `now` is passed in), so that it is
// the same wherever a deadline is shown and can be tested with a fixed clock.
const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// How long from now until due (ISO text or Date): whole days, hours and minutes, rounded
// up to the minute while time is left (never "0 min left" before the instant), down once
// past; null when there is no such instant.
export function countdown(due, now) {
  const at = due instanceof Date ? due.getTime() : Date.parse(due);
  if (Number.isNaN(at)) return null;
  const ms = at - now;
  const overdue = ms <= 0;
  const minutes = overdue ? Math.floor(-ms / MINUTE) : Math.ceil(ms / MINUTE);
  return {
    overdue,
    days: Math.floor(minutes / (DAY / MINUTE)),
    hours: Math.floor((minutes % (DAY / MINUTE)) / (HOUR / MINUTE)),
    minutes: minutes % (HOUR / MINUTE),
  };
}

// The two largest units that are not zero ("2 d 3 h", "3 h 20 min", "5 min"); unit(n, key)
// spells one ("d", "h", "min") in the reader's language.
export function span(left, unit) {
  const parts = [["d", left.days], ["h", left.hours], ["min", left.minutes]];
  const first = parts.findIndex(([, n]) => n > 0);
  if (first < 0) return unit(0, "min");
  return parts.slice(first, first + 2).filter(([, n]) => n > 0).map(([key, n]) => unit(n, key));
}

// How often the page redraws its countdowns (no call to the API: only the clock moves).
export const TICK_MS = 30 * 1000;
