//! `latency`: one publisher at a fixed rate (default 20,000 msg/s) at QoS 1 and one QoS 1
//! subscriber in the same process; reports publish-to-deliver latency percentiles.
//!
//! Each payload starts with the send time in nanoseconds since a monotonic origin
//! shared by publisher and subscriber (same process, same `Instant`), so no clock
//! synchronisation is involved. The publisher sends, every millisecond, the messages
//! that are due by then (20 per tick at 20,000 msg/s) in one write. The first second is
//! a warm-up and is left out of the percentiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{BufMut, BytesMut};
use mqtt::{Ack, Packet, QoS};
use tokio::sync::watch;

use super::{metric, percent, Better, Metric, Settings, Window};
use crate::client::{self, Client, Options};
use crate::peer::Broker;

/// The topic of the stream.
const TOPIC: &str = "bench/latency";
/// Unacknowledged messages beyond which the publisher pauses (packet ids are 16 bits).
const MAX_UNACKED: u64 = 60_000;

/// Runs the latency scenario and returns its metrics.
pub(crate) async fn run(broker: &mut Broker, settings: &Settings) -> Result<Vec<Metric>> {
    let origin = Instant::now();
    let rate = settings.latency_rate.max(1);
    let total = rate * settings.latency_secs.max(2);
    let warmup = rate as usize;

    let mut sub = client::connect(broker.addr, &Options::new("bench-lat-sub"))
        .await
        .context("subscriber")?;
    sub.subscribe(TOPIC, QoS::AtLeastOnce).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let sub_task = tokio::spawn(subscriber(sub, origin, total, stop_rx));

    let publisher = client::connect(broker.addr, &Options::new("bench-lat-pub"))
        .await
        .context("publisher")?;
    let Client {
        mut reader,
        mut writer,
    } = publisher;
    let acked = Arc::new(AtomicU64::new(0));
    let ack_task = {
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            while let Some(p) = reader.next().await? {
                if let Packet::PubAck(_) = p {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, anyhow::Error>(())
        })
    };

    let window = Window::open(broker)?;
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut sent, mut next_id, mut last_print) = (0u64, 1u16, Instant::now());
    while sent < total {
        ticker.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due && sent - acked.load(Ordering::Relaxed) < MAX_UNACKED {
            let mut payload = BytesMut::with_capacity(64);
            payload.put_u64_le(origin.elapsed().as_nanos() as u64);
            payload.put_bytes(b'x', 56);
            writer.push(&client::publish(
                TOPIC,
                QoS::AtLeastOnce,
                Some(next_id),
                payload.freeze(),
            ))?;
            next_id = next_id.checked_add(1).unwrap_or(1);
            sent += 1;
        }
        writer.flush().await?;
        if ack_task.is_finished() {
            bail!("publisher connection ended after {sent} messages");
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            crate::progress(&format!("latency: {sent}/{total} sent"));
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    let give_up = Instant::now() + Duration::from_secs(10);
    while !sub_task.is_finished() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let latencies = sub_task.await.context("subscriber task panicked")??;
    let cpu = window.cpu_spent(broker)?;
    broker.check_alive()?;
    ack_task.abort();

    let received = latencies.len();
    let mut measured: Vec<u64> = latencies.into_iter().skip(warmup).collect();
    if measured.is_empty() {
        bail!("no message arrived after the warm-up ({received} in total)");
    }
    measured.sort_unstable();
    let pct = |p: f64| {
        let i = ((measured.len() as f64 * p).ceil() as usize).clamp(1, measured.len()) - 1;
        measured[i] as f64 / 1000.0
    };
    Ok(vec![
        metric("p50 latency", "µs", Better::Lower, pct(0.50)),
        metric("p99 latency", "µs", Better::Lower, pct(0.99)),
        metric("p99.9 latency", "µs", Better::Lower, pct(0.999)),
        metric("max latency", "µs", Better::Lower, pct(1.0)),
        metric(
            "achieved send rate",
            "msg/s",
            Better::Higher,
            sent as f64 / send_secs,
        ),
        metric(
            "delivered",
            "%",
            Better::Higher,
            percent(received as f64, total as f64),
        ),
        metric(
            "msgs per broker CPU-s",
            "msg/CPU-s",
            Better::Higher,
            received as f64 / cpu.max(0.01),
        ),
    ])
}

/// Acknowledges and timestamps every message until `total` arrived or `stop` is set;
/// returns the latencies in nanoseconds, in arrival order.
async fn subscriber(
    mut c: Client,
    origin: Instant,
    total: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<u64>> {
    let mut latencies = Vec::with_capacity(total as usize);
    while (latencies.len() as u64) < total {
        let first = tokio::select! {
            p = c.reader.next() => p?,
            _ = stop.changed() => break,
        };
        let Some(first) = first else {
            bail!("broker closed the subscriber connection")
        };
        let mut packet = Some(first);
        while let Some(p) = packet {
            if let Packet::Publish(publish) = p {
                let now = origin.elapsed().as_nanos() as u64;
                let sent = publish
                    .payload
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_le_bytes)
                    .context("latency payload shorter than its timestamp")?;
                latencies.push(now.saturating_sub(sent));
                if let Some(id) = publish.packet_id {
                    c.writer.push(&Packet::PubAck(Ack::success(id)))?;
                }
            }
            packet = c.reader.try_next()?;
        }
        c.writer.flush().await?;
    }
    Ok(latencies)
}
