//! An ssh-agent client: signs with a key held by a running `ssh-agent`
//! (draft-miller-ssh-agent), so the secret key never leaves the agent.
//!
//! The agent is reached over its Unix socket, normally named by the
//! `SSH_AUTH_SOCK` environment variable. Every request uses a new
//! connection with a 10 second read and write timeout; replies larger than
//! [`MAX_MESSAGE_LEN`] are refused before anything is allocated for them.

use std::env;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_encoding::base64::{Base64, Encoding};
use ssh_key::Algorithm;

use crate::identity::PublicIdentity;
use crate::sshsig::{self, SigError, Signer, SshSignature, take_string};

/// The largest agent message read or sent, as in OpenSSH.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// How long to wait for the agent to accept or answer a request.
const TIMEOUT: Duration = Duration::from_secs(10);

const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENT_SIGN_RESPONSE: u8 = 14;

/// What the agent says when it will not sign.
const REFUSED: &str = "the agent refused to sign: is the key added? (ssh-add)";

/// A [`Signer`] that asks an ssh-agent to sign with one of its ed25519 keys.
#[derive(Clone, Debug)]
pub struct AgentSigner {
    socket: PathBuf,
    public: PublicIdentity,
}

impl AgentSigner {
    /// A signer using the agent at `socket` to sign with the key `public`.
    ///
    /// Nothing is checked until the first signature.
    pub fn new(socket: impl Into<PathBuf>, public: PublicIdentity) -> Self {
        AgentSigner {
            socket: socket.into(),
            public,
        }
    }

    /// A signer using the agent named by `SSH_AUTH_SOCK` to sign with the
    /// key `public`.
    ///
    /// Errors: [`SigError::Agent`] when `SSH_AUTH_SOCK` is unset or empty.
    pub fn from_env(public: PublicIdentity) -> Result<Self, SigError> {
        match env::var_os("SSH_AUTH_SOCK") {
            Some(socket) if !socket.is_empty() => Ok(Self::new(socket, public)),
            _ => Err(SigError::Agent(
                "no ssh-agent: SSH_AUTH_SOCK is not set".to_owned(),
            )),
        }
    }

    /// The agent's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Signer for AgentSigner {
    fn public(&self) -> PublicIdentity {
        self.public.clone()
    }

    /// Asks the agent to sign.
    ///
    /// Errors: [`SigError::NotInAgent`] when the agent does not hold the
    /// key, [`SigError::Agent`] when it cannot be reached, refuses, or
    /// returns something other than a valid signature by the key.
    fn sign(&self, namespace: &str, message: &[u8]) -> Result<SshSignature, SigError> {
        let data = sshsig::signed_data(namespace, message)?;
        let raw = self.sign_raw(&data)?;
        // `sign_raw` has checked `raw` over exactly these bytes.
        SshSignature::from_parts(self.public.bytes(), namespace, raw)
    }

    /// Asks the agent to sign `data` as it is. The signature is checked
    /// against the key before it is returned: a confused or hostile agent,
    /// or one that signed with another key, is refused.
    fn sign_raw(&self, data: &[u8]) -> Result<[u8; 64], SigError> {
        let key = self.public.bytes();
        let mut request = vec![SSH_AGENTC_SIGN_REQUEST];
        put_string(&mut request, &key_blob(&key));
        put_string(&mut request, data);
        request.extend_from_slice(&0u32.to_be_bytes()); // flags
        let reply = exchange(&self.socket, &request)?;
        let (&kind, mut body) = reply.split_first().ok_or_else(|| bad_reply(&self.socket))?;
        match kind {
            SSH_AGENT_SIGN_RESPONSE => {}
            SSH_AGENT_FAILURE => {
                // Say so if the key is simply not there.
                return Err(match list_identities(&self.socket) {
                    Ok(keys) if !keys.iter().any(|k| k.bytes() == key) => SigError::NotInAgent {
                        socket: self.socket.display().to_string(),
                        fingerprint: self.public.fingerprint(),
                    },
                    _ => SigError::Agent(REFUSED.to_owned()),
                });
            }
            other => return Err(unexpected_reply(&self.socket, other)),
        }
        let mut blob = take_string(&mut body).ok_or_else(|| bad_reply(&self.socket))?;
        let algorithm = take_string(&mut blob).ok_or_else(|| bad_reply(&self.socket))?;
        if algorithm != Algorithm::Ed25519.as_str().as_bytes() {
            return Err(SigError::Agent(format!(
                "the ssh-agent at {} answered with a {:?} signature instead of ssh-ed25519",
                self.socket.display(),
                String::from_utf8_lossy(&algorithm[..algorithm.len().min(64)])
            )));
        }
        let raw = take_string(&mut blob).ok_or_else(|| bad_reply(&self.socket))?;
        let raw: [u8; 64] = raw.try_into().map_err(|_| {
            SigError::Agent(format!(
                "the ssh-agent at {} answered with an ed25519 signature of {} bytes, not 64",
                self.socket.display(),
                raw.len()
            ))
        })?;
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| {
            SigError::Agent(format!(
                "key {} is not a valid ed25519 key",
                self.public.fingerprint()
            ))
        })?;
        verifying
            .verify_strict(data, &ed25519_dalek::Signature::from_bytes(&raw))
            .map_err(|_| {
                SigError::Agent(format!(
                    "the ssh-agent at {} returned an invalid signature for key {}",
                    self.socket.display(),
                    self.public.fingerprint()
                ))
            })?;
        Ok(raw)
    }
}

/// The ed25519 keys held by the agent at `socket`, with their comments;
/// keys of other types are skipped.
///
/// Errors: [`SigError::Agent`] when the agent cannot be reached, refuses,
/// or answers nonsense.
pub fn list_identities(socket: &Path) -> Result<Vec<PublicIdentity>, SigError> {
    let reply = exchange(socket, &[SSH_AGENTC_REQUEST_IDENTITIES])?;
    let (&kind, mut body) = reply.split_first().ok_or_else(|| bad_reply(socket))?;
    match kind {
        SSH_AGENT_IDENTITIES_ANSWER => {}
        SSH_AGENT_FAILURE => {
            return Err(SigError::Agent(format!(
                "the ssh-agent at {} refused to list its keys",
                socket.display()
            )));
        }
        other => return Err(unexpected_reply(socket, other)),
    }
    let count = take_u32(&mut body).ok_or_else(|| bad_reply(socket))?;
    // The count is not trusted for allocation: every key must be present.
    let mut keys = Vec::new();
    for _ in 0..count {
        let blob = take_string(&mut body).ok_or_else(|| bad_reply(socket))?;
        let comment = take_string(&mut body).ok_or_else(|| bad_reply(socket))?;
        if let Some(key) = parse_ed25519_blob(blob) {
            keys.push(identity_with_comment(key, blob, comment));
        }
    }
    Ok(keys)
}

/// The 32-byte key of an `ssh-ed25519` public key blob, `None` for other
/// key types or damaged blobs.
fn parse_ed25519_blob(mut blob: &[u8]) -> Option<[u8; 32]> {
    let algorithm = take_string(&mut blob)?;
    if algorithm != Algorithm::Ed25519.as_str().as_bytes() {
        return None;
    }
    let key = take_string(&mut blob)?.try_into().ok()?;
    blob.is_empty().then_some(key)
}

/// The identity of `key` (whose wire blob is `blob`) with the agent's
/// comment for it, when that comment is printable text.
fn identity_with_comment(key: [u8; 32], blob: &[u8], comment: &[u8]) -> PublicIdentity {
    let plain = PublicIdentity::from_bytes(key);
    let Ok(comment) = std::str::from_utf8(comment) else {
        return plain;
    };
    if comment.trim().is_empty() || comment.chars().any(char::is_control) {
        return plain;
    }
    let line = format!(
        "{} {} {}",
        Algorithm::Ed25519.as_str(),
        Base64::encode_string(blob),
        comment
    );
    match PublicIdentity::parse(&line) {
        Ok(identity) if identity.bytes() == key => identity,
        _ => plain,
    }
}

/// The SSH wire encoding of an ed25519 public key.
fn key_blob(key: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, Algorithm::Ed25519.as_str().as_bytes());
    put_string(&mut blob, key);
    blob
}

/// Appends an SSH `string` (uint32 length, bytes).
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    // Callers bound the total message length before sending, so a length
    // that does not fit a u32 is never sent (it saturates and is refused).
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Takes a big-endian uint32 off the front of `data`.
fn take_u32(data: &mut &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = data.get(..4)?.try_into().ok()?;
    *data = data.get(4..)?;
    Some(u32::from_be_bytes(bytes))
}

/// Sends one request (message type and contents) to the agent at `socket`
/// over a new connection and returns its reply (type and contents).
fn exchange(socket: &Path, request: &[u8]) -> Result<Vec<u8>, SigError> {
    if request.len() > MAX_MESSAGE_LEN {
        return Err(SigError::Agent(format!(
            "the request is too large for the ssh-agent ({} bytes, at most {} KiB)",
            request.len(),
            MAX_MESSAGE_LEN / 1024
        )));
    }
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        SigError::Agent(format!(
            "cannot reach the ssh-agent at {}: {e} (is ssh-agent running, and \
             SSH_AUTH_SOCK right?)",
            socket.display()
        ))
    })?;
    let io_error = |e: io::Error| agent_io_error(socket, e);
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io_error)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io_error)?;
    // Bounded above, so the length fits a u32.
    let len = u32::try_from(request.len()).unwrap_or(u32::MAX);
    let mut message = Vec::with_capacity(4 + request.len());
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(request);
    stream.write_all(&message).map_err(io_error)?;
    stream.flush().map_err(io_error)?;
    let mut len_bytes = [0u8; 4];
    stream.read_exact(&mut len_bytes).map_err(io_error)?;
    let len = u32::from_be_bytes(len_bytes);
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= MAX_MESSAGE_LEN)
        .ok_or_else(|| {
            SigError::Agent(format!(
                "the ssh-agent at {} sent a reply of {len} bytes, more than the {} KiB \
                 allowed",
                socket.display(),
                MAX_MESSAGE_LEN / 1024
            ))
        })?;
    if len == 0 {
        return Err(bad_reply(socket));
    }
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply).map_err(io_error)?;
    Ok(reply)
}

/// The error for a failed read or write on the agent's socket.
fn agent_io_error(socket: &Path, e: io::Error) -> SigError {
    let what = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
            "the ssh-agent at {} did not answer within {} s",
            socket.display(),
            TIMEOUT.as_secs()
        ),
        io::ErrorKind::UnexpectedEof => format!(
            "the ssh-agent at {} closed the connection before answering in full",
            socket.display()
        ),
        _ => format!("cannot talk to the ssh-agent at {}: {e}", socket.display()),
    };
    SigError::Agent(what)
}

/// The error for a reply that is not a well-formed agent message.
fn bad_reply(socket: &Path) -> SigError {
    SigError::Agent(format!(
        "the ssh-agent at {} sent a malformed reply",
        socket.display()
    ))
}

/// The error for a reply of an unexpected message type.
fn unexpected_reply(socket: &Path, kind: u8) -> SigError {
    SigError::Agent(format!(
        "the ssh-agent at {} sent an unexpected reply (message type {kind})",
        socket.display()
    ))
}
