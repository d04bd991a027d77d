//! Job results (this branch only defines [`Exit`], which the process runner
//! reports; the result document itself lives in the documents branch).

use serde::{Deserialize, Serialize};

/// How a job's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal with this number ended it.
    Signal(i32),
}
