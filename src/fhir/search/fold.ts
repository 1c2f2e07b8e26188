/** Case- and accent-insensitive form of a string, as string search compares them. */
export function fold(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}
