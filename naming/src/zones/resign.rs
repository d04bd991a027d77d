//! Re-signing: which zones' metadata this node signs and will soon expire,
//! and signing fresh versions of it.

use clive_trust::{PublicIdentity, Signer};

use crate::NamingError;
use crate::sign::tuf_key;
use crate::source::ZoneLocal;
use crate::state::{self, ZONES, ZoneRecord};
use crate::tuf::{Root, Snapshot, Targets, Timestamp};

use super::signing::TargetsBatch;
use super::{Zones, lifetime, parse};

impl Zones {
    /// Zones whose timestamp or snapshot this node signs and that expire
    /// within a third of their lifetime: they are re-signed by
    /// [`Zones::resign`].
    pub fn due_for_resigning(
        &self,
        me: &PublicIdentity,
        now: u64,
    ) -> Result<Vec<String>, NamingError> {
        let id = tuf_key(me).id();
        let mut due = Vec::new();
        for (zone, _) in state::scan::<ZoneRecord>(&self.db, ZONES, "")? {
            let Ok(root) = self.current::<Root>(&zone, "root") else {
                continue;
            };
            let holds = |role: &str| {
                root.signed
                    .roles
                    .get(role)
                    .is_some_and(|r| r.keyids.contains(&id))
            };
            if !(holds("timestamp") && holds("snapshot")) {
                continue;
            }
            let ts = self.current::<Timestamp>(&zone, "timestamp").ok();
            let snap = self.current::<Snapshot>(&zone, "snapshot").ok();
            if ts.is_none_or(|t| soon(t.signed.expires, lifetime::TIMESTAMP, now))
                || snap.is_none_or(|s| soon(s.signed.expires, lifetime::SNAPSHOT, now))
                || !self.targets_due(&zone, me, now)?.is_empty()
            {
                due.push(zone);
            }
        }
        Ok(due)
    }

    /// The targets roles of `zone` that `me` signs and that expire within
    /// a third of their lifetime.
    fn targets_due(
        &self,
        zone: &str,
        me: &PublicIdentity,
        now: u64,
    ) -> Result<Vec<String>, NamingError> {
        let id = tuf_key(me).id();
        let Ok(root) = self.current::<Root>(zone, "root") else {
            return Ok(Vec::new());
        };
        let top = self.current::<Targets>(zone, "targets")?;
        let mut due = Vec::new();
        let holds_top = root
            .signed
            .roles
            .get("targets")
            .is_some_and(|r| r.keyids.contains(&id));
        if holds_top && soon(top.signed.expires, lifetime::TARGETS, now) {
            due.push("targets".to_owned());
        }
        let delegated = top
            .signed
            .delegations
            .as_ref()
            .and_then(|d| d.roles.clone())
            .unwrap_or_default();
        for role in delegated.iter().filter(|r| r.keyids.contains(&id)) {
            if let Some(bytes) = ZoneLocal::current(&self.db, zone, &role.name)? {
                let doc = parse::<Targets>(zone, &bytes)?;
                if soon(doc.signed.expires, lifetime::TARGETS, now) {
                    due.push(role.name.clone());
                }
            }
        }
        Ok(due)
    }

    /// Signs new versions, with fresh expiry, of the snapshot and timestamp
    /// of `zone`, and of the targets roles `signer` signs that are due.
    pub fn resign(&self, zone: &str, signer: &dyn Signer, now: u64) -> Result<(), NamingError> {
        self.transaction(|z| z.resign_in(zone, signer, now))
    }

    /// [`Zones::resign`] within the transaction in progress.
    fn resign_in(&self, zone: &str, signer: &dyn Signer, now: u64) -> Result<(), NamingError> {
        let root = self.current::<Root>(zone, "root")?;
        let mut batch = TargetsBatch::default();
        for role in self.targets_due(zone, &signer.public(), now)? {
            let doc = self.current::<Targets>(zone, &role)?.signed;
            batch.sign_next(zone, role, doc, signer, now)?;
        }
        self.sign_as_this_node(zone, &root.signed, batch.top, batch.delegated, signer, now)?;
        Ok(())
    }
}

/// Whether metadata expiring at `expires`, valid for `life`, has less than
/// a third of it left at `now`.
fn soon(expires: u64, life: u64, now: u64) -> bool {
    expires.saturating_sub(now) < life / 3
}
