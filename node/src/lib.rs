//! clive-node: a node of the clive network.
//!
//! A [`Node`] owns a [`Home`] (its key, configuration, store and state) and
//! offers the API the command-line tool is a thin client of, one handle per
//! concern: [`Node::store`], [`Node::trust`], [`Node::peers`],
//! [`Node::names`], [`Node::jobs`], [`Node::sync`] (whose engine is [`jobs`]). The daemon
//! ([`daemon`]) runs the node on the network with its background services.

pub mod api;
pub mod authority;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod home;
pub mod jobs;
pub mod lock;
mod memory;
pub mod names;
pub mod net;
pub mod node;
pub mod object;
pub mod peers;
mod repair;
pub mod service;
pub mod stamps;
mod statedb;
pub mod status;
pub mod store;
pub mod sync;
pub mod trust;
pub mod unchanged;

pub use api::{
    ApiError, Call, CallContext, NameReply, NameRequest, NodeReply, PeerReply, PeerRequest, Reply,
    Request, StoreReply, StoreRequest, TrustReply, TrustRequest,
};
pub use authority::{CertInfo, NodeTrust, Refusal};
pub use clive_cas as cas;
pub use clive_naming;
pub use clive_trust;
pub use config::Config;
pub use control::{Connection, ControlClient};
pub use error::{NamesError, NetError, NodeError, TrustError};
pub use home::Home;
pub use lock::HomeLock;
pub use names::NamesHandle;
pub use net::{Fetched, FromPeer, Invite, Joined, NetOptions, PeerInfo, Pushed};
pub use node::{IdentityInfo, InitOptions, Initialized, Node, PassphraseSource};
pub use peers::PeersHandle;
pub use status::Status;
pub use store::{AddResult, GcOutcome, ListEntry, StoreHandle};
pub use sync::{SyncError, SyncHandle};
pub use trust::{Imported, RevocationInfo, RootInfo, SignWith, TrustHandle, Verdict};
