//! The simulator's progress on stderr (`sim::progress` renders it): on a terminal one
//! line redrawn every second with bars for provisioned and connected devices; in a log
//! or a pipe a plain line every 5 s. The hub's registry and anomaly list are asked
//! every second until every device was seen connected, then every 5 s (they are
//! paged, and the hub is busy); the fleet's own counters at every update.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use sim::hub::{self, HubApi};
use sim::progress::Progress;

/// How often the hub is asked (once every device was seen connected), and a plain
/// line printed.
const HUB_EVERY: Duration = Duration::from_secs(5);
/// How often the terminal line is redrawn.
const REDRAW_EVERY: Duration = Duration::from_secs(1);
/// Terminal width when it cannot be found out.
const DEFAULT_WIDTH: usize = 100;

/// Progress of one run.
pub(super) struct Monitor<'a> {
    api: &'a dyn HubApi,
    ids: &'a HashSet<&'a str>,
    started_ms: i64,
    /// Terminal width, when stderr is a terminal.
    terminal: Option<usize>,
    next_hub: Instant,
    next_draw: Instant,
    /// Messages produced at the previous update, and when.
    last: (Instant, u64),
    shown: Progress,
    /// A redrawn line is on the screen (to be cleared before a plain line).
    drawn: bool,
    /// When the registry first listed every device as connected.
    all_connected: Option<Duration>,
}

impl<'a> Monitor<'a> {
    /// Progress of the fleet `ids`, started at `started_ms`, asking `api`.
    pub(super) fn new(api: &'a dyn HubApi, ids: &'a HashSet<&'a str>, started_ms: i64) -> Self {
        let now = Instant::now();
        Monitor {
            api,
            ids,
            started_ms,
            terminal: std::io::stderr().is_terminal().then(width),
            next_hub: now + REDRAW_EVERY,
            next_draw: now + REDRAW_EVERY,
            last: (now, 0),
            shown: Progress {
                devices: ids.len(),
                ..Progress::default()
            },
            drawn: false,
            all_connected: None,
        }
    }

    /// When every device was first seen connected (at the 5 s resolution of the
    /// hub questions).
    pub(super) fn all_connected(&self) -> Option<Duration> {
        self.all_connected
    }

    /// Called often (about every second): updates and shows what is due. Until every
    /// device has been seen connected the registry is asked every second (for "all
    /// connected after"), then every 5 s.
    pub(super) fn tick(&mut self, elapsed: Duration, running: usize, produced: u64) {
        let now = Instant::now();
        let hub_due = now >= self.next_hub;
        let draw_due = now >= self.next_draw;
        if !hub_due && !draw_due {
            return;
        }
        let (then, before) = self.last;
        let seconds = now.duration_since(then).as_secs_f64();
        if seconds > 0.0 {
            self.shown.msgs_per_s = produced.saturating_sub(before) as f64 / seconds;
        }
        self.last = (now, produced);
        self.shown.elapsed = elapsed;
        self.shown.running = running;
        self.shown.produced = produced;
        if hub_due {
            self.ask_hub();
            if self.all_connected.is_none() && self.shown.connected == Some(self.ids.len()) {
                self.all_connected = Some(elapsed);
            }
            let every = match self.all_connected {
                Some(_) => HUB_EVERY,
                None => REDRAW_EVERY,
            };
            self.next_hub = now + every;
        }
        if draw_due {
            match self.terminal {
                Some(width) => {
                    self.next_draw = now + REDRAW_EVERY;
                    self.redraw(width);
                }
                None => {
                    self.next_draw = now + HUB_EVERY;
                    self.say(&self.shown.line());
                }
            }
        }
    }

    /// A line of its own (above the redrawn one on a terminal).
    pub(super) fn say(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if std::mem::take(&mut self.drawn) {
            let _ = write!(err, "\r\x1b[K");
        }
        let _ = writeln!(err, "{text}");
    }

    fn ask_hub(&mut self) {
        self.shown.provisioned = hub::count_devices(self.api, self.ids, false).ok();
        self.shown.connected = hub::count_devices(self.api, self.ids, true).ok();
        self.shown.detections = hub::anomalies(self.api, self.started_ms)
            .ok()
            .map(|a| a.len());
    }

    fn redraw(&mut self, width: usize) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{}", self.shown.bars(width.saturating_sub(1)));
        let _ = err.flush();
        self.drawn = true;
    }
}

impl Drop for Monitor<'_> {
    fn drop(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The terminal's width: `COLUMNS`, else `stty size` on the controlling terminal, else
/// [`DEFAULT_WIDTH`].
fn width() -> usize {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return n;
    }
    let tty = std::fs::File::open("/dev/tty").ok();
    let asked = tty.and_then(|tty| {
        std::process::Command::new("stty")
            .arg("size")
            .stdin(tty)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
    });
    asked
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.split_whitespace().nth(1)?.parse().ok()
        })
        .filter(|&w: &usize| w >= 20)
        .unwrap_or(DEFAULT_WIDTH)
}
