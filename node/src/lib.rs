//! clive-node: a node of the clive network.
//!
//! A [`Node`] owns a [`Home`] (its key, configuration, store and state) and
//! offers the API the command-line tool is a thin client of.

pub mod api;
pub mod config;
pub mod control;
pub mod daemon;
pub mod error;
pub mod home;
pub mod lock;
pub mod names;
pub mod net;
pub mod node;
pub mod object;
mod repair;
mod statedb;
pub mod trust;

pub use api::{
    ApiError, Call, CallContext, NameRequest, PeerRequest, Reply, Request, StoreRequest,
    TrustRequest,
};
pub use clive_cas as cas;
pub use clive_naming;
pub use clive_trust;
pub use config::Config;
pub use control::{Connection, ControlClient};
pub use error::NodeError;
pub use home::Home;
pub use lock::HomeLock;
pub use net::{Fetched, Invite, Joined, NetOptions, PeerInfo, Pushed, Status};
pub use node::{
    AddResult, IdentityInfo, InitOptions, Initialized, ListEntry, Node, PassphraseSource,
};
pub use trust::{CertInfo, Imported, NodeTrust, RevocationInfo, RootInfo, SignWith, Verdict};
