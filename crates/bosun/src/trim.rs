//! Gives freed heap memory back to the operating system once the broker goes quiet.
//!
//! A burst (a fan-out to thousands of subscribers, a queue of a million messages
//! drained) leaves glibc's heaps full of freed but still resident pages; glibc returns
//! them only from the top of a heap, so a long-running broker would keep its peak
//! footprint forever (Mosquitto does: ~395 MB after a 1M-message fan-in). Once a second
//! this task compares the message and connection counters with the previous second; the
//! first quiet second after activity calls `malloc_trim(0)` on a blocking thread. Busy
//! brokers never pay for it, idle ones pay once.

use std::sync::Arc;
use std::time::Duration;

use broker::metrics::Metrics;

/// How often activity is sampled.
const SAMPLE: Duration = Duration::from_secs(1);

/// Starts the background task on the current runtime.
pub(crate) fn spawn(metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        let mut last = activity(&metrics);
        let mut busy_since_trim = false;
        let mut tick = tokio::time::interval(SAMPLE);
        loop {
            tick.tick().await;
            let now = activity(&metrics);
            if now != last {
                last = now;
                busy_since_trim = true;
            } else if busy_since_trim {
                busy_since_trim = false;
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
            }
        }
    });
}

/// A number that changes whenever messages flow or clients connect.
fn activity(m: &Metrics) -> u64 {
    let messages: u64 = m
        .messages_in
        .iter()
        .chain(&m.messages_out)
        .map(|c| c.get())
        .sum();
    messages.wrapping_add(m.connections_total.get())
}

/// Asks the allocator to return free pages to the operating system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: `malloc_trim` takes a plain integer, touches only the allocator's own
    // free lists under its own locks, and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl, macOS) manage this themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
