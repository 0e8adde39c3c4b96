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

/** Milliseconds with one decimal: "12.3 ms". */
export function ms(n: number): string {
  return `${decimal.format(n)} ms`
}

/** Two aligned columns. */
export function table(rows: ReadonlyArray<readonly [string, string]>): string {
  const left = Math.max(...rows.map(([k]) => k.length))
  const right = Math.max(...rows.map(([, v]) => v.length))
  return rows.map(([k, v]) => `  ${k.padEnd(left)}  ${v.padStart(right)}`).join('\n')
}
