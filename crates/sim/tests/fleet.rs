//! The fleet without a hub: agents produce into their offline buffers whether or not
//! the hub is there, so start, stagger, partitions, counting and the end-of-run tally
//! can be checked against an address that refuses every connection.

use std::time::Duration;

use sim::scenario::Partition;
use sim::{Fleet, FleetConfig, Plan, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_stop_and_restart_agents_and_nothing_unacknowledged_is_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port nothing listens on: connections are refused, production goes on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hub = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let mut scenario = Scenario {
        devices: 3,
        speed: 10.0,
        stagger: Duration::ZERO,
        axes: 1,
        ..Scenario::default()
    };
    scenario.partitions.push(Partition {
        first: 3,
        count: 1,
        at: Duration::from_millis(800),
        duration: Duration::from_millis(1200),
    });
    let plan = Plan::new(scenario).expect("plan");
    let fleet = Fleet::start(
        plan,
        FleetConfig {
            hub,
            ca: None,
            host_name: None,
            identity: agent::Identity::Anonymous,
            buffer_root: dir.path().to_owned(),
            source_addresses: sim::SourceAddresses::loopback(2),
            firmware: None,
        },
    )
    .expect("start");
    wait_for(&fleet, Duration::from_millis(1200)).await;
    assert_eq!(fleet.running(), 2, "device 3 is cut off");
    wait_for(&fleet, Duration::from_millis(2600)).await;
    assert_eq!(fleet.running(), 3, "device 3 is back");
    let outcome = fleet.stop().await;
    let windows: Vec<u64> = outcome.devices.iter().map(|d| d.windows).collect();
    // 10 windows a second of wall time; device 3 missed 1.2 s of them.
    assert!(windows[0] >= 15 && windows[1] >= 15, "{windows:?}");
    assert!(windows[2] + 6 <= windows[0], "{windows:?}");
    for d in &outcome.devices {
        assert_eq!(d.error, None);
        assert_eq!(d.unsent, d.windows, "nothing can be acknowledged: {d:?}");
        assert_eq!(d.acked(), 0);
    }
}

/// Waits (in real time) until the fleet has run for `t`.
async fn wait_for(fleet: &Fleet, t: Duration) {
    tokio::time::sleep(t.saturating_sub(fleet.elapsed())).await;
}

#[tokio::test]
async fn a_bad_configuration_is_refused_before_anything_starts() {
    let plan = Plan::new(Scenario::default()).expect("plan");
    let config = FleetConfig {
        hub: String::new(),
        ca: None,
        host_name: None,
        identity: agent::Identity::Anonymous,
        buffer_root: std::env::temp_dir(),
        source_addresses: sim::SourceAddresses::System,
        firmware: None,
    };
    assert!(Fleet::start(plan, config).is_err());
}
