//! The runtime in-process against a "hub" that accepts TCP connections and never
//! answers: the connection attempt must not hold up production, every window lands in
//! the offline buffer in order, and shutdown is clean. Also: the agent's future is
//! `Send`, so a simulator can run many on a multi-threaded runtime.

use std::time::Duration;

use agent::source::Frame;
use agent::{Error, Limits, OfflineBuffer, Options, Source};
use tokio::net::TcpListener;

/// A "live" sensor written outside the crate against the `Source` trait: one axis, a
/// 157 Hz tone, and every third read fails (a flaky bus).
struct FlakySensor {
    reads: u32,
    t: f32,
}

impl Source for FlakySensor {
    fn rate_hz(&self) -> f32 {
        12_000.0
    }
    fn axes(&self) -> usize {
        1
    }
    fn shaft_hz(&self) -> f32 {
        25.0
    }
    fn fill(&mut self, frames: &mut [Frame]) -> Result<(), Error> {
        self.reads += 1;
        if self.reads % 3 == 0 {
            return Err(Error::Source("I2C timeout".into()));
        }
        for frame in frames {
            *frame = [(self.t * 157.0 * std::f32::consts::TAU).sin(), 0.0, 0.0];
            self.t += 1.0 / 12_000.0;
        }
        Ok(())
    }
}

#[tokio::test]
async fn windows_are_buffered_while_the_hub_is_silent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new("silent-1", &addr.to_string());
    options.interval = Duration::from_secs(1);
    options.speed = 10.0;
    options.buffer_dir = dir.path().to_owned();
    let stats = options.stats.clone();
    let source = agent::parse_source("synthetic:fault=bpfo", 7).expect("source");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = dir.path().to_owned();
    let watch = async move {
        // Ten windows at 100 ms each, while the first CONNACK wait (15 s) is pending.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = std::fs::read_dir(&path).map(|d| d.count()).unwrap_or(0);
            if count >= 10 || tokio::time::Instant::now() > deadline {
                let _ = stop.send(());
                return count;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let run = agent::run(options, source, async {
        let _ = stopped.await;
    });
    let (result, count) = tokio::select! {
        both = async { tokio::join!(run, watch) } => both,
        () = hold => unreachable!("the listener never stops"),
    };
    assert!(result.is_ok(), "{result:?}");
    assert!(count >= 10, "only {count} windows buffered");

    let mut buffer = OfflineBuffer::open(dir.path(), Limits::default()).expect("reopen");
    let keys: Vec<u64> = buffer.keys().collect();
    let mut seqs = Vec::new();
    for key in keys {
        let payload = buffer.read(key).expect("read").expect("intact record");
        let features = device::encode::cbor::decode(&payload).expect("features");
        seqs.push(features.seq);
    }
    let expected: Vec<u32> = (0..seqs.len() as u32).collect();
    assert_eq!(seqs, expected, "windows in production order");
    let stats = stats.snapshot();
    assert_eq!((stats.connects, stats.acknowledged), (0, 0), "{stats:?}");
    assert_eq!(stats.produced as usize, seqs.len(), "{stats:?}");
}

/// A hub that accepts the connection (CONNACK) and then never acknowledges or reads
/// anything: production goes on, at most one window of messages is on the wire, and
/// every message stays in the buffer.
#[tokio::test]
async fn a_hub_that_never_acknowledges_keeps_everything_buffered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hub = async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            // Read (some of) the CONNECT, answer a v5 CONNACK (success, no properties),
            // then hold the connection without reading again.
            let mut connect = [0u8; 256];
            let _ = stream.read(&mut connect).await;
            let _ = stream.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).await;
            held.push(stream);
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new("unacked-1", &addr.to_string());
    options.interval = Duration::from_secs(1);
    options.speed = 20.0;
    options.buffer_dir = dir.path().to_owned();
    let stats = options.stats.clone();
    let source = agent::parse_source("synthetic", 3).expect("source");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watch_stats = stats.clone();
    let watch = async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while watch_stats.snapshot().produced < 25 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(());
    };
    let run = agent::run(options, source, async {
        let _ = stopped.await;
    });
    let (result, ()) = tokio::select! {
        both = async { tokio::join!(run, watch) } => both,
        () = hub => unreachable!("the listener never stops"),
    };
    assert!(result.is_ok(), "{result:?}");
    let stats = stats.snapshot();
    assert!(stats.produced >= 25, "{stats:?}");
    assert_eq!((stats.connects, stats.acknowledged), (1, 0), "{stats:?}");
    let buffer = OfflineBuffer::open(dir.path(), Limits::default()).expect("reopen");
    assert_eq!(
        buffer.len() as u64,
        stats.produced,
        "nothing left the buffer unacknowledged"
    );
}

/// A sensor that fails now and then costs those windows only.
#[tokio::test]
async fn a_failing_sensor_loses_windows_not_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on port 1: every connection attempt is refused at once.
    let mut options = Options::new("flaky-1", "127.0.0.1:1");
    options.interval = Duration::from_secs(1);
    options.speed = 20.0;
    options.buffer_dir = dir.path().to_owned();
    let sensor = Box::new(FlakySensor { reads: 0, t: 0.0 });
    let path = dir.path().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watch = async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(&path).map(|d| d.count()).unwrap_or(0) < 6
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(());
    };
    let run = agent::run(options, sensor, async {
        let _ = stopped.await;
    });
    let (result, ()) = tokio::join!(run, watch);
    assert!(result.is_ok(), "{result:?}");
    let mut buffer = OfflineBuffer::open(dir.path(), Limits::default()).expect("reopen");
    let keys: Vec<u64> = buffer.keys().collect();
    assert!(keys.len() >= 6, "{keys:?}");
    for key in keys {
        let payload = buffer.read(key).expect("read").expect("record");
        let f = device::encode::cbor::decode(&payload).expect("features");
        assert!(f.axes[0].is_some() && f.axes[1].is_none(), "one axis");
        assert_eq!(f.shaft_hz, 25.0);
    }
}

#[test]
fn the_agent_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let options = Options::new("d", "127.0.0.1:1");
    let source = agent::parse_source("synthetic", 1).expect("source");
    let future = agent::run(options, source, std::future::pending());
    assert_send(&future);
}
