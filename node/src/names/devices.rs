//! The device zone of one person's paired devices (`invite --device`): a
//! zone whose every role lists each device's key, threshold 1, so each
//! device publishes into it alone, offline (see `net/devices.rs` for the
//! pairing itself).

use clive_naming::NamingError;

use super::NamesHandle;
use crate::NodeError;

impl NamesHandle<'_> {
    /// Creates the device zone `zone`, with this device alone in it, unless
    /// this node has it already.
    pub async fn ensure_device_zone(
        &self,
        zone: &str,
        signer: &dyn clive_trust::Signer,
    ) -> Result<(), NodeError> {
        let zones = self.zones();
        match zones.record(zone) {
            Ok(_) => Ok(()),
            Err(NamingError::UnknownZone { .. }) => {
                zones.create_devices(zone, &[], 1, &[], signer, self.now())?;
                self.announce_zone(zone);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
