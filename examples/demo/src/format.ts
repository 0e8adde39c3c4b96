const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })

/** 1234567 → "1,234,567". */
export function int(n: number): string {
  return integer.format(n)
}

/** 1234567 → "1.2 M", 45678 → "45.7 k". */
export function compact(n: number): string {
  if (n >= 1e6) return `${decimal.format(n / 1e6)} M`
  if (n >= 1e3) return `${decimal.format(n / 1e3)} k`
  return integer.format(n)
}

/** Bytes in MiB with one decimal: "12.3 MiB". */
export function mib(bytes: number): string {
  return `${decimal.format(bytes / 2 ** 20)} MiB`
}

/** Milliseconds as seconds with one decimal: "12.3 s". */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}
