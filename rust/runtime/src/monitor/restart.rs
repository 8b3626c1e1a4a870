//! Restart policy (`--restart`) and the back-off between restarts.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    UnlessStopped,
    /// Restart on a non-zero exit, at most N times (0 = no limit).
    OnFailure(u32),
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "no" | "" => Ok(Policy::No),
            "always" => Ok(Policy::Always),
            "unless-stopped" => Ok(Policy::UnlessStopped),
            "on-failure" => Ok(Policy::OnFailure(0)),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse::<u32>()
                    .map(Policy::OnFailure)
                    .map_err(|_| format!("invalid restart count in {s:?}")),
                None => Err(format!(
                    "invalid restart policy {s:?} (no, always, unless-stopped, on-failure[:N])"
                )),
            },
        }
    }
}

impl Policy {
    /// `stop_requested`: the engine wrote DIR/stop-requested before a user
    /// stop/kill, which overrides every policy.
    pub fn should_restart(self, exit_code: i32, restarts: u32, stop_requested: bool) -> bool {
        if stop_requested {
            return false;
        }
        match self {
            Policy::No => false,
            Policy::Always | Policy::UnlessStopped => true,
            Policy::OnFailure(max) => exit_code != 0 && (max == 0 || restarts < max),
        }
    }
}

const FIRST: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(10);
/// A run at least this long counts as healthy and resets the back-off.
const HEALTHY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// Delay before the next restart, given how long the last run lasted.
    pub fn delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= HEALTHY {
            self.next = FIRST;
        }
        let d = self.next;
        self.next = (self.next * 2).min(CAP);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!("no".parse::<Policy>().unwrap(), Policy::No);
        assert_eq!("always".parse::<Policy>().unwrap(), Policy::Always);
        assert_eq!(
            "unless-stopped".parse::<Policy>().unwrap(),
            Policy::UnlessStopped
        );
        assert_eq!(
            "on-failure".parse::<Policy>().unwrap(),
            Policy::OnFailure(0)
        );
        assert_eq!(
            "on-failure:3".parse::<Policy>().unwrap(),
            Policy::OnFailure(3)
        );
        assert!("on-failure:x".parse::<Policy>().is_err());
        assert!("sometimes".parse::<Policy>().is_err());
    }

    #[test]
    fn decisions() {
        assert!(!Policy::No.should_restart(1, 0, false));
        assert!(Policy::Always.should_restart(0, 50, false));
        assert!(!Policy::Always.should_restart(1, 0, true));
        assert!(!Policy::UnlessStopped.should_restart(0, 0, true));
        let p = Policy::OnFailure(3);
        assert!(!p.should_restart(0, 0, false));
        assert!(p.should_restart(1, 2, false));
        assert!(!p.should_restart(1, 3, false));
        assert!(Policy::OnFailure(0).should_restart(137, 1000, false));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(10);
        let got: Vec<u128> = (0..9).map(|_| b.delay(short).as_millis()).collect();
        assert_eq!(
            got,
            vec![100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(b.delay(Duration::from_secs(10)).as_millis(), 100);
        assert_eq!(b.delay(short).as_millis(), 200);
    }
}
