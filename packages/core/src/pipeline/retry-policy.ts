import type { PipelineConfig } from './protocol.ts'

/** The options the retry policy reads. */
export type RetryPolicyConfig = Pick<
  PipelineConfig,
  'maxAttempts' | 'maxRetryAgeMs' | 'retryInitialDelayMs' | 'retryMaxDelayMs'
>

/** What to do with a batch whose attempt failed retryably. */
export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number }
  | { readonly retry: false; readonly reason: string }

/**
 * The backoff's upper bound before attempt `attempt + 1`:
 * min(retryMaxDelayMs, retryInitialDelayMs × 2^(attempt-1)). The exponent is
 * capped so that a large attempt count cannot overflow to Infinity × 0.
 */
export function backoffCapMs(config: RetryPolicyConfig, attempt: number): number {
  return Math.min(config.retryMaxDelayMs, config.retryInitialDelayMs * 2 ** Math.min(30, attempt - 1))
}

/**
 * Retry after an exponential backoff with full jitter (a random delay up to
 * `backoffCapMs`, so the retries of many batches spread out), never sooner
 * than the target's `retryAfterMs` (itself capped at retryMaxDelayMs, so a
 * target cannot park a batch for longer than the queue would); or give up
 * when the batch is out of attempts (`attempt` ≥ maxAttempts) or has been
 * retried for maxRetryAgeMs (`ageMs`: since its first attempt). `reason` is
 * the failure's description, kept in the give-up reason. Pure: `random`
 * returns a number in [0, 1).
 */
export function retryDecision(
  config: RetryPolicyConfig,
  attempt: number,
  ageMs: number,
  reason: string,
  retryAfterMs?: number,
  random: () => number = Math.random,
): RetryDecision {
  if (attempt >= config.maxAttempts) {
    return { retry: false, reason: `gave up after ${attempt} attempts: ${reason}` }
  }
  if (ageMs >= config.maxRetryAgeMs) {
    return {
      retry: false,
      reason: `gave up after ${Math.round(ageMs)} ms (maxRetryAgeMs ${config.maxRetryAgeMs}), ${attempt} attempts: ${reason}`,
    }
  }
  const floor = Math.min(retryAfterMs ?? 0, config.retryMaxDelayMs)
  return { retry: true, delayMs: Math.max(random() * backoffCapMs(config, attempt), floor) }
}
