//! `fanout`: one publisher, 1,000 subscribers of the same topic, QoS 0.
//!
//! Measures deliveries per second summed over all subscribers and deliveries per broker
//! CPU-second, and the broker's memory: with the subscribers connected but idle, at its
//! peak, and two seconds after the last delivery (it should come back near idle once
//! the per-subscriber queues drain).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mqtt::{Packet, QoS};

use super::{metric, payload64, throughput, Arrivals, Better, Metric, Settings, Window};
use crate::client::{self, Client, Options};
use crate::peer::Broker;

/// The topic every subscriber listens to.
const TOPIC: &str = "bench/fanout";
/// Messages encoded into one write by the publisher.
const BATCH: u64 = 64;

/// Runs the fan-out and returns its metrics.
pub(crate) async fn run(broker: &mut Broker, settings: &Settings) -> Result<Vec<Metric>> {
    let origin = Instant::now();
    let subscribers = settings.fanout_subscribers.max(1);
    let messages = (settings.fanout_deliveries / subscribers as u64).max(1);
    let expected = messages * subscribers as u64;

    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients = client::connect_many(
        broker.addr,
        subscribers,
        50,
        QoS::AtMostOnce,
        connected,
        |i| {
            let mut opts = Options::new(format!("bench-fanout-{i}"));
            opts.read_chunk = 16 * 1024;
            (opts, TOPIC.to_owned())
        },
    )
    .await
    .context("subscribers")?;
    let arrivals = Arc::new(Arrivals::default());
    let mut tasks = tokio::task::JoinSet::new();
    for c in clients {
        tasks.spawn(subscriber(c, Arc::clone(&arrivals), origin));
    }
    let mut publisher = client::connect(broker.addr, &Options::new("bench-fanout-pub"))
        .await
        .context("publisher")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = broker.rss_kib()?;

    let done = Arc::new(AtomicBool::new(false));
    let window = Window::open(broker)?;
    let pub_task = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let result = async {
                let encoded = client::encode_one(&client::publish(
                    TOPIC,
                    QoS::AtMostOnce,
                    None,
                    payload64(),
                ))?;
                let mut left = messages;
                while left > 0 {
                    let n = left.min(BATCH);
                    for _ in 0..n {
                        publisher.writer.push_encoded(&encoded);
                    }
                    publisher.writer.flush().await?;
                    left -= n;
                }
                Ok::<_, anyhow::Error>(())
            }
            .await;
            done.store(true, Ordering::Relaxed);
            result.map(|()| publisher)
        })
    };
    let finished = || done.load(Ordering::Relaxed);
    let complete = arrivals
        .wait(
            expected,
            Duration::from_secs(3),
            Duration::from_secs(180),
            finished,
            "fanout",
        )
        .await;
    let cpu = window.cpu_spent(broker)?;
    broker.check_alive()?;
    while let Some(done) = tasks.try_join_next() {
        if let Ok(Err(e)) = done {
            return Err(e.context("a subscriber failed"));
        }
    }
    let publisher = pub_task
        .await
        .context("publisher task panicked")?
        .context("publisher")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = broker.rss_kib()?;
    let rss_peak = broker.peak_rss_kib()?;
    drop(publisher);
    tasks.abort_all();

    let received = arrivals.count();
    if !complete {
        crate::progress(&format!(
            "fanout: only {received} of {expected} deliveries arrived"
        ));
    }
    let secs = arrivals.span().as_secs_f64().max(1e-9);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut rows = throughput(
        ("deliveries/s", "deliveries per broker CPU-s"),
        received,
        expected,
        secs,
        cpu,
    )
    .to_vec();
    rows.extend([
        metric("RSS, subscribers idle", "MiB", Better::Lower, mib(rss_idle)),
        metric("RSS, peak", "MiB", Better::Lower, mib(rss_peak)),
        metric("RSS, 2 s after run", "MiB", Better::Lower, mib(rss_after)),
        metric(
            "RSS after − idle",
            "MiB",
            Better::Lower,
            mib(rss_after) - mib(rss_idle),
        ),
    ]);
    Ok(rows)
}

/// Counts PUBLISH packets until the connection ends.
async fn subscriber(mut c: Client, arrivals: Arc<Arrivals>, origin: Instant) -> Result<()> {
    loop {
        let Some(first) = c.reader.next().await? else {
            bail!("broker closed a subscriber connection")
        };
        let mut n = u64::from(matches!(first, Packet::Publish(_)));
        while let Some(p) = c.reader.try_next()? {
            n += u64::from(matches!(p, Packet::Publish(_)));
        }
        arrivals.record(n, origin);
    }
}
