//! Which address a request came from. The socket peer, unless the peer is a trusted proxy
//! (configured as CIDR blocks); then `X-Forwarded-For` is read from the right, skipping trusted
//! hops, and the first untrusted address is the client. The left-most value is never trusted on
//! its own, because any client can write whatever it likes there.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client address of a request from `peer` carrying these `X-Forwarded-For` header values (in
/// the order received). IPv4-mapped IPv6 addresses are reported as IPv4.
pub fn client_ip<'header>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'header str>,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |address: IpAddr| {
        trusted_proxies
            .iter()
            .any(|network| network.contains(&address))
    };
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(address) = parse_hop(hop) else {
            // An unreadable hop ends the chain: what lies left of it cannot be trusted.
            return client;
        };
        client = address;
        if !is_trusted(address) {
            return address;
        }
    }
    client
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// One hop: an address, optionally with a port (`203.0.113.9:5000`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn networks(texts: &[&str]) -> Vec<IpNet> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(
            client_ip(ip("198.51.100.7"), ["203.0.113.9"], &[]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_peer_hands_over_to_the_right_most_untrusted_hop() {
        let trusted = networks(&["10.0.0.0/8"]);
        // The client forged the left-most value; the proxy appended the real address.
        let client = client_ip(ip("10.0.0.2"), ["1.2.3.4, 203.0.113.9, 10.0.0.1"], &trusted);
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn several_header_lines_are_one_list_in_order() {
        let trusted = networks(&["10.0.0.0/8"]);
        let client = client_ip(ip("10.0.0.2"), ["1.2.3.4", "203.0.113.9"], &trusted);
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_even_when_proxies_are_configured() {
        let trusted = networks(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), ["203.0.113.9"], &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn garbage_or_a_missing_header_stops_at_the_last_trusted_hop() {
        let trusted = networks(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["evil, 10.0.0.1"], &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), Vec::<&str>::new(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ports_and_ipv4_mapped_addresses_are_understood() {
        let trusted = networks(&["::1/128"]);
        assert_eq!(
            client_ip(ip("::1"), ["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.7"), Vec::<&str>::new(), &[]),
            ip("198.51.100.7")
        );
    }
}
