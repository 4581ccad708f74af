//! Which local address each simulated device connects from.
//!
//! Every TCP connection to one hub port needs its own (source address, source port)
//! pair, and one source address has only ~28,000 ephemeral ports
//! (`net.ipv4.ip_local_port_range`). Linux routes all of 127.0.0.0/8 to the loopback
//! interface, so against a hub on loopback the fleet spreads its devices round-robin
//! over 127.0.0.1 … 127.0.0.N, and each address brings its own ports. Against a remote
//! hub (or IPv6) the system chooses, as for any client.

use std::net::{IpAddr, Ipv4Addr};

/// Devices per source address when the fleet spreads them by itself: well below the
/// ~28,000 ephemeral ports of one address.
pub const DEVICES_PER_ADDRESS: usize = 20_000;

/// Most loopback source addresses used (127.0.0.1 … 127.0.0.254).
pub const MAX_ADDRESSES: usize = 254;

/// How the devices pick their source addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAddresses {
    /// The system chooses (no bind before connecting).
    System,
    /// Round-robin over 127.0.0.1 … 127.0.0.`count`, by device number.
    Loopback {
        /// How many addresses, 1–[`MAX_ADDRESSES`].
        count: usize,
    },
}

impl SourceAddresses {
    /// `count` loopback addresses (clamped to 1–[`MAX_ADDRESSES`]); 0 means the system
    /// chooses.
    pub fn loopback(count: usize) -> SourceAddresses {
        match count {
            0 => SourceAddresses::System,
            n => SourceAddresses::Loopback {
                count: n.min(MAX_ADDRESSES),
            },
        }
    }

    /// The default for `devices` devices against `hub` (`host:port`): one loopback
    /// address per [`DEVICES_PER_ADDRESS`] devices (at least two, so the spreading is
    /// always exercised) when the hub is on IPv4 loopback; otherwise the system's choice.
    pub fn automatic(hub: &str, devices: usize) -> SourceAddresses {
        if !is_ipv4_loopback(hub) {
            return SourceAddresses::System;
        }
        SourceAddresses::loopback(devices.div_ceil(DEVICES_PER_ADDRESS).max(2))
    }

    /// The source address of device `number` (1-based); `None`: the system's choice.
    pub fn of(&self, number: usize) -> Option<IpAddr> {
        match *self {
            SourceAddresses::System => None,
            SourceAddresses::Loopback { count } => {
                let k = number.saturating_sub(1) % count.clamp(1, MAX_ADDRESSES);
                let last = u8::try_from(k + 1).unwrap_or(1);
                Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
            }
        }
    }

    /// How many distinct addresses the fleet uses (0: the system's choice).
    pub fn count(&self) -> usize {
        match *self {
            SourceAddresses::System => 0,
            SourceAddresses::Loopback { count } => count,
        }
    }
}

/// Whether `hub` (`host:port`) is an IPv4 loopback address or `localhost`.
fn is_ipv4_loopback(hub: &str) -> bool {
    let host = hub.rsplit_once(':').map_or(hub, |(host, _)| host);
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    #[test]
    fn round_robin_over_loopback() {
        let plan = SourceAddresses::loopback(3);
        let got: Vec<_> = (1..=5).map(|n| plan.of(n)).collect();
        assert_eq!(got, [ip(1), ip(2), ip(3), ip(1), ip(2)]);
        assert_eq!(SourceAddresses::loopback(0).of(1), None);
        assert_eq!(SourceAddresses::loopback(1000).count(), MAX_ADDRESSES);
    }

    #[test]
    fn automatic_only_on_ipv4_loopback() {
        let auto = SourceAddresses::automatic;
        assert_eq!(auto("127.0.0.1:1883", 300).count(), 2);
        assert_eq!(auto("localhost:1883", 10_000).count(), 2);
        assert_eq!(auto("127.0.0.1:1883", 50_000).count(), 3);
        assert_eq!(auto("127.0.0.1:1883", 60_001).count(), 4);
        assert_eq!(auto("hub.example:8883", 50_000), SourceAddresses::System);
        assert_eq!(auto("[::1]:1883", 50_000), SourceAddresses::System);
        assert_eq!(auto("10.0.0.1:1883", 50_000), SourceAddresses::System);
    }

    proptest! {
        #[test]
        fn every_device_gets_a_loopback_address(count in 0usize..1000, number in 0usize..1_000_000) {
            let plan = SourceAddresses::loopback(count);
            match plan.of(number) {
                None => prop_assert_eq!(count, 0),
                Some(IpAddr::V4(a)) => {
                    prop_assert!(a.is_loopback() && a.octets()[3] >= 1);
                    prop_assert!(usize::from(a.octets()[3]) <= plan.count());
                }
                Some(other) => prop_assert!(false, "{other}"),
            }
        }

        #[test]
        fn any_hub_text_is_fine(hub in ".{0,40}", devices in 0usize..200_000) {
            let plan = SourceAddresses::automatic(&hub, devices);
            prop_assert!(plan.count() <= MAX_ADDRESSES);
        }
    }
}
