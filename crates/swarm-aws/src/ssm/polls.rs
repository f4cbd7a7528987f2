//! When to ask SSM about a command just sent: from when a command of its kind is usually
//! done, doubling up to a cap, cut at its kill and its end.

use std::time::Duration;

use tokio::time::Instant;

/// The first poll comes when a command of its kind is usually done (the caller says), never
/// sooner than this: a command takes the better part of a second to be delivered, run and
/// reported (a probe ~0.5 s), so asking sooner only spends calls.
pub(super) const FIRST_POLL: Duration = Duration::from_millis(800);
/// The wait between polls of a command doubles up to this (a join: 2, 6, 14, 22, 30 s…), so
/// a command that runs n times longer (a busy host, a long drain) costs about log2(n) more
/// polls, not n times as many; a join alone (~1.3 s) is answered by the first poll.
pub(super) const MAX_POLL: Duration = Duration::from_secs(8);

pub(super) fn first_poll(usual: Duration) -> Duration {
    usual.clamp(FIRST_POLL, MAX_POLL)
}

pub(super) fn next_poll(delay: Duration) -> Duration {
    (delay * 2).min(MAX_POLL)
}

/// The agent reports a command it killed at its executionTimeout within about this.
pub(super) const KILL_REPORTED: Duration = Duration::from_secs(1);
/// A command with no final status this long after its timeout is reported TimedOut here.
pub(super) const NO_REPORT_GRACE: Duration = Duration::from_secs(10);

/// When to ask SSM about a command just sent.
pub(super) struct Polls {
    pub(super) delay: Duration,
    /// The script is killed by then (sent + executionTimeout): a poll comes right after, so a
    /// hung command is known at its timeout, not up to MAX_POLL later.
    pub(super) killed: Instant,
    pub(super) end: Instant,
}

impl Polls {
    pub(super) fn new(usual: Duration, timeout: Duration) -> Self {
        Self::sent_at(Instant::now(), usual, timeout)
    }

    pub(super) fn sent_at(sent: Instant, usual: Duration, timeout: Duration) -> Self {
        Polls {
            delay: first_poll(usual),
            killed: sent + timeout + KILL_REPORTED,
            end: sent + timeout + NO_REPORT_GRACE,
        }
    }

    /// One poll now, and no other.
    pub(super) fn once() -> Self {
        let now = Instant::now();
        Polls {
            delay: Duration::ZERO,
            killed: now,
            end: now,
        }
    }

    pub(super) async fn pause(&mut self) {
        tokio::time::sleep(self.wait_from(Instant::now(), jittered(self.delay))).await;
        self.delay = next_poll(self.delay);
    }

    /// The wait before the next poll: `delay`, cut at the kill (while it is ahead) and at the end.
    pub(super) fn wait_from(&self, now: Instant, delay: Duration) -> Duration {
        let mut d = delay.min(self.end.saturating_duration_since(now));
        if now < self.killed {
            d = d.min(self.killed - now);
        }
        d
    }

    pub(super) fn past_end(&self) -> bool {
        Instant::now() >= self.end
    }
}

/// ±20%: the functions of a scale-out, started together, do not poll SSM in lockstep.
pub(super) fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(0.8 + rand::random::<f64>() * 0.4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_core::ports::{USUAL_COMMAND, USUAL_JOIN};

    const HOUR: Duration = Duration::from_secs(3600);

    /// Polls (without jitter) until a command final after `length` (its executionTimeout
    /// `timeout`) is seen final, and when.
    fn polls_until(length: Duration, usual: Duration, timeout: Duration) -> (u32, Duration) {
        let t0 = Instant::now();
        let mut p = Polls::sent_at(t0, usual, timeout);
        let (mut at, mut n) = (Duration::ZERO, 0);
        while at < length && t0 + at < p.end {
            at += p.wait_from(t0 + at, p.delay);
            p.delay = next_poll(p.delay);
            n += 1;
        }
        (n, at)
    }

    fn polls(length: Duration, usual: Duration) -> u32 {
        polls_until(length, usual, HOUR).0
    }

    #[test]
    fn a_command_killed_at_its_timeout_is_seen_right_after_it() {
        let timeout = Duration::from_secs(10);
        let hung = timeout + Duration::from_millis(500);
        assert_eq!(
            polls_until(hung, USUAL_JOIN, timeout),
            (3, timeout + KILL_REPORTED),
            "2, 6, then 11 s (not 14)"
        );
        // An agent that never reports: the caller is told TimedOut at the end, not later.
        let (_, at) = polls_until(HOUR, USUAL_JOIN, timeout);
        assert_eq!(at, timeout + NO_REPORT_GRACE);
    }

    #[test]
    fn polls_grow_with_the_log_of_a_command_s_length_then_every_max_poll() {
        assert_eq!(polls(Duration::from_millis(1300), USUAL_JOIN), 1, "a join alone");
        assert_eq!(
            polls(Duration::from_secs(20), USUAL_JOIN),
            4,
            "a join among twenty on a busy machine"
        );
        assert_eq!(polls(Duration::from_millis(500), USUAL_COMMAND), 1, "a probe");
        assert_eq!(
            polls(Duration::from_secs(1), Duration::ZERO),
            2,
            "never sooner than FIRST_POLL"
        );
        assert!(
            polls(Duration::from_secs(300), USUAL_COMMAND) <= 40,
            "a five-minute drain"
        );
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(1));
            assert!(
                j >= Duration::from_millis(800) && j <= Duration::from_millis(1200),
                "{j:?}"
            );
        }
    }
}
