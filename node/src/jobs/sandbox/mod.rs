//! Sandbox levels and what this machine can give.

#[cfg(target_os = "linux")]
pub mod linux;
pub mod macos;
