//! When to try a failed job again.

use std::time::Duration;

use crate::config::JobsConfig;

/// The configured schedule with jitter. Attempt n (1-based) that fails waits `schedule[n-1]`; an attempt past
/// the schedule's end makes the job dead.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
    jitter: f64,
}

impl RetryPolicy {
    pub fn new(schedule: Vec<Duration>, jitter: f64) -> Self {
        Self { schedule, jitter: jitter.clamp(0.0, 1.0) }
    }

    pub fn from_config(config: &JobsConfig) -> Self {
        Self::new(config.retry_schedule.clone(), config.retry_jitter)
    }

    /// How many attempts a job gets in all.
    pub fn max_attempts(&self) -> usize {
        self.schedule.len() + 1
    }

    /// The wait after failed attempt `attempt`, or `None` when the job is out of attempts. The other side's
    /// `Retry-After` can lengthen the wait, never shorten it.
    pub fn delay_after(&self, attempt: i64, retry_after: Option<Duration>) -> Option<Duration> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        let base = *self.schedule.get(index)?;
        let jittered = if self.jitter > 0.0 {
            let spread = (random_unit() * 2.0 - 1.0) * self.jitter;
            base.mul_f64((1.0 + spread).max(0.0))
        } else {
            base
        };
        Some(match retry_after {
            Some(wait) if wait > jittered => wait,
            _ => jittered,
        })
    }
}

/// A uniform number in [0, 1).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_then_dead() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(10), Duration::from_secs(60)], 0.0);
        assert_eq!(policy.max_attempts(), 3);
        assert_eq!(policy.delay_after(1, None), Some(Duration::from_secs(10)));
        assert_eq!(policy.delay_after(2, None), Some(Duration::from_secs(60)));
        assert_eq!(policy.delay_after(3, None), None);
        assert_eq!(policy.delay_after(0, None), None);
    }

    #[test]
    fn retry_after_only_lengthens() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(10)], 0.0);
        assert_eq!(policy.delay_after(1, Some(Duration::from_secs(90))), Some(Duration::from_secs(90)));
        assert_eq!(policy.delay_after(1, Some(Duration::from_secs(1))), Some(Duration::from_secs(10)));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(100)], 0.2);
        let delays: Vec<Duration> = (0..200).filter_map(|_| policy.delay_after(1, None)).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_secs(80) && *d <= Duration::from_secs(120)));
        assert!(delays.iter().any(|d| *d != delays[0]), "jitter must vary");
    }
}
