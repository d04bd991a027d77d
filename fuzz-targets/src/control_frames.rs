use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use clive_node::{
    Call, Reply,
    control::{
        ErrorMessage, Hello,
        wire::{
            Frame, Kind, MAX_FRAME, ProgressSnapshot, WireError, decode_json, read_frame,
            write_frame,
        },
    },
};

/// Runs a future that never waits: reading from and writing to memory
/// completes at its first poll.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a read from memory waited"),
    }
}

fn json_round_trip<T>(what: &'static str, payload: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(value) = decode_json::<T>(what, payload) else {
        return;
    };
    let bytes = serde_json::to_vec(&value).expect("a decoded value encodes");
    let back: T = decode_json(what, &bytes).expect("an encoded value decodes");
    assert_eq!(back, value);
}

/// Control protocol frames (`node::control::wire`): what the daemon reads
/// from a client on its socket, and a client from the daemon.
///
/// The input is a byte stream read frame by frame with `read_frame`, each
/// payload decoded as its kind says (hello, request, progress, reply parts
/// joined into a reply, error), as the server and the client do.
///
/// Properties: never panics; each frame read is exactly the bytes it was
/// read from when written again; each payload that decodes re-encodes to a
/// payload that decodes to the same value.
pub fn control_frames(data: &[u8]) {
    let mut rest = data;
    let mut reply = Vec::new();
    loop {
        let before = rest;
        let frame: Frame = match now(read_frame(&mut rest)) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                assert!(before.is_empty());
                break;
            }
            Err(e) => {
                assert!(
                    !matches!(e, WireError::Io { .. } | WireError::Timeout { .. }),
                    "reading memory failed: {e}"
                );
                break;
            }
        };
        let used = before.len() - rest.len();
        assert!(used <= 4 + MAX_FRAME as usize);
        let mut written = Vec::new();
        now(write_frame(&mut written, frame.kind, &frame.payload)).expect("a read frame writes");
        assert_eq!(
            written,
            before[..used],
            "a frame reads as other bytes than it writes"
        );
        match frame.kind {
            Kind::Hello => json_round_trip::<Hello>("hello", &frame.payload),
            Kind::Request => json_round_trip::<Call>("request", &frame.payload),
            Kind::Progress => {
                if let Ok(p) = ProgressSnapshot::decode(&frame.payload) {
                    assert_eq!(ProgressSnapshot::decode(&p.encode()).ok(), Some(p));
                }
            }
            Kind::ReplyPart => reply.extend_from_slice(&frame.payload),
            Kind::Reply => {
                reply.extend_from_slice(&frame.payload);
                json_round_trip::<Reply>("reply", &reply);
                reply.clear();
            }
            Kind::Error => json_round_trip::<ErrorMessage>("error", &frame.payload),
            Kind::Data | Kind::ErrData | Kind::End | Kind::Cancel => {}
        }
    }
}
