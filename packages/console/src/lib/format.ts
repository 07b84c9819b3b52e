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
