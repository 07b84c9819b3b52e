import type { User } from './api.js';

/** A timestamp in the person's locale, or a dash when the server sent none. */
export function formatTime(value: string | null | undefined): string {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

/** "3 min ago"-style age, for timelines. */
export function formatAge(value: string | null | undefined, now = Date.now()): string {
  if (!value) return '';
  const seconds = Math.round((now - new Date(value).getTime()) / 1000);
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Just the name (or email when there is no name), for compact lists. */
export function userName(user: User | null | undefined): string {
  return user ? user.name || user.email : 'system';
}

/** 900 → "15 min", 7200 → "2 h", 90 → "1 min 30 s". */
export function formatDuration(seconds: number): string {
  const units: Array<[number, string]> = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min'],
    [1, 's'],
  ];
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [size, unit] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  return parts.length ? parts.join(' ') : '0 s';
}
