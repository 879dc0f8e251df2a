/** Prices are integers in minor units (cents) in the API; people see and type major units. */
export function formatPrice(minor: number, currency: string): string {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).format(minor / 100);
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
}

/** "12.50" -> 1250; null when it is not a non-negative amount with at most two decimals. */
export function parsePrice(text: string | undefined | null): number | null {
  const value = (text ?? "").trim().replace(",", ".");
  if (!/^\d{1,10}(\.\d{1,2})?$/.test(value)) return null;
  return Math.round(Number(value) * 100);
}

export const CURRENCIES = ["EUR", "USD", "GBP"] as const;
