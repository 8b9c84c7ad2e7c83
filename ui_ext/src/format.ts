// Small display helpers.
export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (value === 0) return "free";
  return value < 0.01 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
}

export function when(iso: string): string {
  return new Date(iso).toLocaleString();
}

export function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}
