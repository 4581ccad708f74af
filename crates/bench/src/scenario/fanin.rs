//! `fanin0` and `fanin1`: 100 publishers sending as fast as they can into one subscriber
//! of `bench/#`, with 64-byte payloads.
//!
//! At QoS 0 the publishers just stream pre-encoded PUBLISH packets in large batches. At
//! QoS 1 each publisher keeps up to 100 messages unacknowledged, and the subscriber uses
//! a persistent session (clean session off, fixed client id) and acknowledges every
//! message, so bosun takes its durable path (log append with group-committed fsync).
//! The measuring window starts once every client is connected and subscribed and ends
//! at the last message received; throughput is counted from the first to the last
//! arrival at the subscriber.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mqtt::{Ack, Packet, QoS};

use super::{metric, payload64, throughput, Arrivals, Better, Metric, Settings, Window};
use crate::client::{self, Client, Options};
use crate::peer::Broker;

/// Publishing clients.
const PUBLISHERS: usize = 100;
/// QoS 1 messages a publisher keeps unacknowledged.
const WINDOW: usize = 100;
/// QoS 0 messages encoded into one write.
const BATCH: u64 = 256;

/// Runs the fan-in at `qos` and returns its metrics.
pub(crate) async fn run(broker: &mut Broker, settings: &Settings, qos: QoS) -> Result<Vec<Metric>> {
    let label = if qos == QoS::AtMostOnce {
        "fanin0"
    } else {
        "fanin1"
    };
    let origin = Instant::now();
    let per_publisher = (settings.fanin_messages / PUBLISHERS as u64).max(1);
    let expected = per_publisher * PUBLISHERS as u64;

    let mut opts = Options::new("bench-sub");
    opts.clean_session = qos == QoS::AtMostOnce;
    opts.read_chunk = 256 * 1024;
    let mut sub = client::connect(broker.addr, &opts)
        .await
        .context("subscriber")?;
    sub.subscribe("bench/#", qos).await?;
    let arrivals = Arc::new(Arrivals::default());
    let dups = Arc::new(AtomicU64::new(0));
    let sub_task = tokio::spawn(subscriber(
        sub,
        Arc::clone(&arrivals),
        Arc::clone(&dups),
        origin,
        qos == QoS::AtLeastOnce,
    ));

    let mut publishers = Vec::with_capacity(PUBLISHERS);
    for i in 0..PUBLISHERS {
        let c = client::connect(broker.addr, &Options::new(format!("bench-pub-{i}")))
            .await
            .with_context(|| format!("publisher {i}"))?;
        publishers.push(c);
    }

    let finished = Arc::new(AtomicUsize::new(0));
    let window = Window::open(broker)?;
    let mut tasks = Vec::with_capacity(PUBLISHERS);
    for (i, c) in publishers.into_iter().enumerate() {
        let finished = Arc::clone(&finished);
        tasks.push(tokio::spawn(async move {
            let topic = format!("bench/{i}");
            let result = match qos {
                QoS::AtMostOnce => publish_qos0(c, &topic, per_publisher).await,
                _ => publish_qos1(c, &topic, per_publisher).await,
            };
            finished.fetch_add(1, Ordering::Relaxed);
            result
        }));
    }
    let all_done = || finished.load(Ordering::Relaxed) == PUBLISHERS;
    let complete = arrivals
        .wait(
            expected,
            Duration::from_secs(3),
            Duration::from_secs(180),
            all_done,
            label,
        )
        .await;
    let cpu = window.cpu_spent(broker)?;
    let rss = broker.rss_kib()?;
    // Memory a broker keeps after the burst (the issue cites Mosquitto keeping ~395 MB
    // after a 1M-message QoS 1 fan-in): sampled once the clients have been quiet 2 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = broker.rss_kib()?;
    broker.check_alive()?;

    let mut clients = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if !task.is_finished() {
            task.abort();
            bail!("publisher {i} never finished: the broker stopped acknowledging or reading");
        }
        clients.push(
            task.await
                .context("publisher task panicked")?
                .with_context(|| format!("publisher {i}"))?,
        );
    }
    if sub_task.is_finished() {
        sub_task
            .await
            .context("subscriber task panicked")?
            .context("subscriber")?;
    } else {
        sub_task.abort();
    }
    drop(clients);

    let received = arrivals.count();
    if !complete {
        crate::progress(&format!(
            "{label}: only {received} of {expected} messages arrived"
        ));
    }
    let secs = arrivals.span().as_secs_f64().max(1e-9);
    let mut rows = throughput(
        ("delivered msgs/s", "msgs per broker CPU-s"),
        received,
        expected,
        secs,
        cpu,
    )
    .to_vec();
    rows.extend([
        metric(
            "redelivered (DUP set)",
            "msgs",
            Better::Lower,
            dups.load(Ordering::Relaxed) as f64,
        ),
        metric(
            "broker RSS at end",
            "MiB",
            Better::Lower,
            rss as f64 / 1024.0,
        ),
        metric(
            "broker RSS 2 s after",
            "MiB",
            Better::Lower,
            rss_after as f64 / 1024.0,
        ),
    ]);
    Ok(rows)
}

/// Streams `count` identical QoS 0 messages in batches; keeps the connection open by
/// returning the client.
async fn publish_qos0(mut c: Client, topic: &str, count: u64) -> Result<Client> {
    let encoded = client::encode_one(&client::publish(topic, QoS::AtMostOnce, None, payload64()))?;
    let mut left = count;
    while left > 0 {
        let n = left.min(BATCH);
        for _ in 0..n {
            c.writer.push_encoded(&encoded);
        }
        c.writer.flush().await?;
        left -= n;
    }
    Ok(c)
}

/// Sends `count` QoS 1 messages keeping at most [`WINDOW`] unacknowledged.
async fn publish_qos1(mut c: Client, topic: &str, count: u64) -> Result<Client> {
    let payload = payload64();
    let (mut sent, mut acked, mut in_flight) = (0u64, 0u64, 0usize);
    let mut next_id: u16 = 1;
    while acked < count {
        while in_flight < WINDOW && sent < count {
            c.writer.push(&client::publish(
                topic,
                QoS::AtLeastOnce,
                Some(next_id),
                payload.clone(),
            ))?;
            next_id = next_id.checked_add(1).unwrap_or(1);
            in_flight += 1;
            sent += 1;
        }
        c.writer.flush().await?;
        let Some(first) = c.reader.next().await? else {
            bail!("broker closed the connection after {acked} PUBACKs")
        };
        let mut packet = Some(first);
        while let Some(p) = packet {
            if let Packet::PubAck(_) = p {
                acked += 1;
                in_flight = in_flight.saturating_sub(1);
            }
            packet = c.reader.try_next()?;
        }
    }
    Ok(c)
}

/// Counts arriving PUBLISH packets and, when `ack` is set, acknowledges each one (all
/// PUBACKs for one read go out in one write).
async fn subscriber(
    mut c: Client,
    arrivals: Arc<Arrivals>,
    dups: Arc<AtomicU64>,
    origin: Instant,
    ack: bool,
) -> Result<()> {
    loop {
        let Some(first) = c.reader.next().await? else {
            bail!("broker closed the subscriber connection")
        };
        let mut n = 0;
        let mut packet = Some(first);
        while let Some(p) = packet {
            if let Packet::Publish(publish) = p {
                n += 1;
                if publish.dup {
                    dups.fetch_add(1, Ordering::Relaxed);
                }
                if let (true, Some(id)) = (ack, publish.packet_id) {
                    c.writer.push(&Packet::PubAck(Ack::success(id)))?;
                }
            }
            packet = c.reader.try_next()?;
        }
        arrivals.record(n, origin);
        c.writer.flush().await?;
    }
}
