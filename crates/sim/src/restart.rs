//! The `hub_restart` scenario events: at each one the hub the simulator started is
//! killed with SIGKILL and started again on the same data directory and ports; then
//! the registry is watched until every device that should be running is connected
//! again. The agents meanwhile keep producing into their offline buffers, reconnect
//! with their backoff and drain in order; the report's loss check covers that.
//!
//! Reconnection is measured from the hub's side (its registry's `connectionState`,
//! which a restarted hub resets to `disconnected` for every device before it accepts
//! anyone), so it works the same with `--shards`.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::hub::{self, HubApi};
use crate::plan::Plan;
use crate::server::HubProcess;
use crate::Error;

/// How often the registry is asked while devices reconnect.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// What one restart did.
#[derive(Clone, Debug, PartialEq)]
pub struct Restart {
    /// When the hub was killed, wall time since the fleet started.
    pub at: Duration,
    /// From the kill until the new hub announced its listeners.
    pub down: Duration,
    /// From the new hub listening until every device that should run was connected
    /// again; `None` when that did not happen before the end of the run.
    pub reconnect: Option<Duration>,
    /// Devices the registry listed as connected again (the most seen).
    pub reconnected: usize,
    /// Devices that should have reconnected (running at the last look).
    pub expected: usize,
}

/// A restart whose devices are still reconnecting.
struct Recovering {
    restart: Restart,
    /// When the new hub was listening.
    up: Instant,
    next_poll: Instant,
}

/// The pending and finished restarts of a run.
pub struct Restarts {
    pending: VecDeque<Duration>,
    current: Option<Recovering>,
    done: Vec<Restart>,
    /// Lines to show the operator, not yet taken.
    news: Vec<String>,
}

impl Restarts {
    /// The scenario's restart times (wall time since the fleet started).
    pub fn new(times: &[Duration]) -> Restarts {
        let mut times = times.to_vec();
        times.sort();
        Restarts {
            pending: times.into(),
            current: None,
            done: Vec::new(),
            news: Vec::new(),
        }
    }

    /// What happened since the last call, as lines for the operator.
    pub fn take_news(&mut self) -> Vec<String> {
        std::mem::take(&mut self.news)
    }

    /// Whether there is nothing to do (no restart in the scenario).
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.current.is_none() && self.done.is_empty()
    }

    /// How long the caller may sleep, at fleet time `elapsed`, before the next
    /// [`Restarts::poll`] is due; `None` when nothing is due any more.
    pub fn due_in(&self, elapsed: Duration) -> Option<Duration> {
        if let Some(r) = &self.current {
            return Some(r.next_poll.saturating_duration_since(Instant::now()));
        }
        self.pending.front().map(|at| at.saturating_sub(elapsed))
    }

    /// Kills and restarts the hub when a restart is due, and checks on the devices of
    /// one in progress. `elapsed` is the fleet's run time; `ids` its device ids.
    pub fn poll(
        &mut self,
        elapsed: Duration,
        hub: &mut HubProcess,
        api: &dyn HubApi,
        plan: &Plan,
        ids: &HashSet<&str>,
    ) -> Result<(), Error> {
        if let Some(r) = &mut self.current {
            if Instant::now() < r.next_poll {
                return Ok(());
            }
            r.next_poll = Instant::now() + POLL_EVERY;
            // A hub that is busy taking everyone back may answer slowly or not at all.
            let Ok(connected) = hub::count_devices(api, ids, true) else {
                return Ok(());
            };
            r.restart.reconnected = r.restart.reconnected.max(connected);
            r.restart.expected = plan.running_at(elapsed);
            if connected >= r.restart.expected {
                let took = r.up.elapsed();
                r.restart.reconnect = Some(took);
                self.news.push(format!(
                    "[{:>5.1}s] all {connected} devices connected again, {:.1} s after the hub restarted",
                    elapsed.as_secs_f64(),
                    took.as_secs_f64()
                ));
                self.finish_current();
            }
            return Ok(());
        }
        match self.pending.front() {
            Some(&at) if at <= elapsed => {
                self.pending.pop_front();
                self.kill_and_start(at, hub)
            }
            _ => Ok(()),
        }
    }

    /// The restarts, the one still in progress last (with no reconnection time).
    pub fn finish(mut self) -> Vec<Restart> {
        self.finish_current();
        self.done
    }

    fn finish_current(&mut self) {
        if let Some(r) = self.current.take() {
            self.done.push(r.restart);
        }
    }

    fn kill_and_start(&mut self, at: Duration, hub: &mut HubProcess) -> Result<(), Error> {
        let killed = Instant::now();
        hub.kill9();
        tracing::info!(at = at.as_secs_f64(), "hub killed (SIGKILL)");
        hub.restart()?;
        let up = Instant::now();
        self.news.push(format!(
            "[{:>5.1}s] hub killed (kill -9) and started again on {}: down {:.1} s",
            at.as_secs_f64(),
            hub.listening().mqtt,
            (up - killed).as_secs_f64()
        ));
        self.current = Some(Recovering {
            restart: Restart {
                at,
                down: up - killed,
                reconnect: None,
                reconnected: 0,
                expected: 0,
            },
            up,
            next_poll: up,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_follow_the_schedule() {
        let r = Restarts::new(&[Duration::from_secs(20), Duration::from_secs(10)]);
        assert!(!r.is_empty());
        assert_eq!(
            r.due_in(Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert_eq!(r.due_in(Duration::from_secs(12)), Some(Duration::ZERO));
        assert!(Restarts::new(&[]).is_empty());
        assert_eq!(Restarts::new(&[]).due_in(Duration::ZERO), None);
        assert!(Restarts::new(&[]).finish().is_empty());
    }
}
