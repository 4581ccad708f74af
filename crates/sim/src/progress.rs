//! What the simulator shows while it runs: one plain line per update when stderr is a
//! log or a pipe, one redrawn line with bars when it is a terminal. Rendering only;
//! the caller gathers the numbers (the hub's registry for provisioned and connected,
//! the fleet's own counters for messages) and decides where they go.

use std::fmt::Write;
use std::time::Duration;

/// One update's numbers; `None` where a question to the hub failed (shown as `?`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Fleet run time.
    pub elapsed: Duration,
    /// Devices in the fleet.
    pub devices: usize,
    /// Agents running now (started and not cut off).
    pub running: usize,
    /// Fleet devices in the hub's registry.
    pub provisioned: Option<usize>,
    /// Fleet devices the registry lists as connected.
    pub connected: Option<usize>,
    /// Feature messages produced so far.
    pub produced: u64,
    /// Feature messages produced per second, since the previous update.
    pub msgs_per_s: f64,
    /// Anomaly detections (`entered` events) since the start.
    pub detections: Option<usize>,
    /// What is going on besides, e.g. `hub restarting`.
    pub note: Option<String>,
}

/// Cells of each bar on a terminal line.
const BAR_CELLS: usize = 16;

impl Progress {
    /// One plain line, for logs and pipes.
    pub fn line(&self) -> String {
        let mut out = format!(
            "[{:>5.1}s] agents running {}/{}, hub: {} provisioned, {} connected; \
             messages produced {} ({:.0}/s); detections {}",
            self.elapsed.as_secs_f64(),
            self.running,
            self.devices,
            shown(self.provisioned),
            shown(self.connected),
            self.produced,
            self.msgs_per_s,
            shown(self.detections)
        );
        if let Some(note) = &self.note {
            let _ = write!(out, "; {note}");
        }
        out
    }

    /// The terminal line: bars for provisioned and connected, then the counters, cut
    /// to `width` characters (without a newline: the caller redraws it with `\r`).
    pub fn bars(&self, width: usize) -> String {
        let mut out = format!(
            "{:>5.0}s provisioned {} {} connected {} {} {:>6.0} msgs/s detections {}",
            self.elapsed.as_secs_f64(),
            bar(self.provisioned, self.devices, BAR_CELLS),
            count(self.provisioned, self.devices),
            bar(self.connected, self.devices, BAR_CELLS),
            count(self.connected, self.devices),
            self.msgs_per_s,
            shown(self.detections)
        );
        if let Some(note) = &self.note {
            let _ = write!(out, " · {note}");
        }
        out.chars().take(width.max(1)).collect()
    }
}

/// `[#####-----]`: `done` of `total` in `cells` cells (empty brackets when unknown).
pub fn bar(done: Option<usize>, total: usize, cells: usize) -> String {
    let filled = match done {
        Some(done) if total > 0 => (done.min(total) * cells) / total,
        _ => 0,
    };
    let fill = if done.is_some() { '-' } else { '?' };
    let mut out = String::with_capacity(cells + 2);
    out.push('[');
    out.extend(std::iter::repeat_n('#', filled));
    out.extend(std::iter::repeat_n(fill, cells - filled));
    out.push(']');
    out
}

/// `done/total`, or `?/total`.
fn count(done: Option<usize>, total: usize) -> String {
    format!("{}/{total}", shown(done))
}

fn shown(n: Option<usize>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Progress {
        Progress {
            elapsed: Duration::from_millis(12_300),
            devices: 2000,
            running: 1990,
            provisioned: Some(2000),
            connected: Some(1000),
            produced: 12_345,
            msgs_per_s: 480.4,
            detections: None,
            note: Some("hub restarting".into()),
        }
    }

    #[test]
    fn plain_line_and_bars() {
        let p = sample();
        assert_eq!(
            p.line(),
            "[ 12.3s] agents running 1990/2000, hub: 2000 provisioned, 1000 connected; \
             messages produced 12345 (480/s); detections ?; hub restarting"
        );
        let line = p.bars(200);
        assert!(
            line.contains("provisioned [################] 2000/2000"),
            "{line}"
        );
        assert!(
            line.contains("connected [########--------] 1000/2000"),
            "{line}"
        );
        assert!(
            line.contains("480 msgs/s detections ? · hub restarting"),
            "{line}"
        );
        assert_eq!(p.bars(20).chars().count(), 20);
        assert_eq!(bar(None, 10, 4), "[????]");
    }

    proptest! {
        #[test]
        fn bars_are_always_their_width(done in proptest::option::of(0usize..10_000), total in 0usize..5000, cells in 0usize..40) {
            let b = bar(done, total, cells);
            prop_assert_eq!(b.chars().count(), cells + 2);
        }
    }
}
