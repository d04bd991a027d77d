//! The QUIC endpoint: iroh, keyed by the node's SSH ed25519 key, so the
//! endpoint id *is* the node's public key.
//!
//! Nothing leaves the machine unasked: relays are off unless configured, no
//! DNS, pkarr or mDNS discovery runs, the net report makes no probes and no
//! port mapping is attempted. Peers are dialled at the addresses this node
//! was told (tickets, `peers add`, hellos and announcements), through an
//! in-memory address book.

use std::{net::SocketAddr, time::Duration};

use iroh::{
    Endpoint, RelayMode, RelayUrl,
    address_lookup::MemoryLookup,
    endpoint::{QuicTransportConfig, presets},
};

use crate::{NetError, NodeError, error::EndpointError};

/// How often an idle connection is kept alive.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How often each path of a connection is probed while idle: a live peer
/// answers, which is what [`super::liveness`] counts on.
const PATH_KEEP_ALIVE: Duration = Duration::from_secs(2);
/// How long a path may go unanswered before it is given up (the last path
/// of a connection is not: [`super::liveness`] closes that connection).
const PATH_IDLE_TIMEOUT: Duration = Duration::from_secs(6);

/// The daemon's listen address when none is configured: a fixed port, so
/// peers find a restarted node where they last saw it.
pub const DEFAULT_BIND: &str = "0.0.0.0:4919";

/// Binds an endpoint for `secret` on `bind` (default [`DEFAULT_BIND`]),
/// registering every connection with `hooks`.
/// With `ephemeral`, the ports are replaced by 0: a one-command endpoint
/// only dials out and must not take the daemon's port.
pub async fn bind(
    secret: &clive_trust::SecretKey,
    bind: &[SocketAddr],
    ephemeral: bool,
    relay: Option<&str>,
    lookup: MemoryLookup,
    hooks: super::shared::Registry,
) -> Result<Endpoint, NodeError> {
    let net_err = |e: EndpointError| NodeError::from(NetError::Endpoint(e));
    let transport = QuicTransportConfig::builder()
        .keep_alive_interval(KEEP_ALIVE)
        .default_path_keep_alive_interval(PATH_KEEP_ALIVE)
        .default_path_max_idle_timeout(PATH_IDLE_TIMEOUT)
        .build();
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(iroh::SecretKey::from_bytes(&secret.to_bytes()))
        .clear_ip_transports()
        .clear_address_lookup()
        .address_lookup(lookup)
        .relay_mode(RelayMode::Disabled)
        .net_report_config(iroh::endpoint::NetReportConfig::minimal())
        .transport_config(transport)
        .hooks(hooks);
    let defaults = [DEFAULT_BIND
        .parse::<SocketAddr>()
        .map_err(|e| net_err(EndpointError::DefaultBind(e)))?];
    let bind = if bind.is_empty() { &defaults[..] } else { bind };
    for addr in bind {
        let mut addr = *addr;
        if ephemeral {
            addr.set_port(0);
        }
        builder = builder
            .bind_addr(addr)
            .map_err(|cause| net_err(EndpointError::Address { addr, cause }))?;
    }
    if let Some(url) = relay {
        let url: RelayUrl = url.parse().map_err(|cause| {
            net_err(EndpointError::RelayUrl {
                url: url.to_owned(),
                cause,
            })
        })?;
        builder = builder.relay_mode(RelayMode::custom([url]));
    }
    builder.bind().await.map_err(|cause| {
        let addrs: Vec<String> = bind.iter().map(ToString::to_string).collect();
        net_err(EndpointError::Bind {
            addrs: addrs.join(", "),
            cause,
        })
    })
}
