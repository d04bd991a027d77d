//! The daemon's local control socket, and how a client picks between it and
//! opening the home in-process.
//!
//! # Protocol `clive-control`, version 4
//!
//! `HOME/control.sock` is a Unix stream socket of mode 0600, reachable only
//! by the user who owns the home (the daemon also checks the peer's uid with
//! `SO_PEERCRED`). Both directions carry frames ([`wire`]):
//!
//! ```text
//! frame = length:u32 (big endian, kind + payload, 1..=16 MiB) kind:u8 payload
//!
//! kind 1 HELLO       JSON {"protocol":"clive-control","version":4,"pid":N}
//! kind 2 REQUEST     JSON api::Call {"cwd":..,"ssh_auth_sock":..,"request":REQUEST}
//! kind 3 DATA        raw bytes, at most 64 KiB
//! kind 4 END         empty
//! kind 5 PROGRESS    flags:u8 (bit 0: total known) total:u64 done:u64, big endian
//! kind 6 REPLY_PART  a piece of the JSON reply; the next piece follows
//! kind 7 REPLY       JSON api::Reply {CONCERN:{"reply":..,"value":..}} (its last piece)
//! kind 8 ERROR       JSON {"message":".."}
//! kind 9 ERR_DATA    raw bytes, at most 64 KiB
//! kind 10 CANCEL     empty
//! ```
//!
//! A REQUEST is an [`crate::api::Request`] in serde's internally tagged
//! form: `op` names the concern or command (`id`, `stop`, `status`,
//! `store`, `trust`, `peers`, `name`, `exec`, `job`), and each concern's
//! own tag names the command within it (`store_op`, then `pin_op` for
//! `pin`; `trust_op`, then `roots_op`; `peer_op`, then `peers_op`;
//! `name_op`, then `zone_op` or `root_op`; `job_op`), beside the command's
//! fields, all in one object:
//!
//! ```text
//! {"op":"id"}
//! {"op":"store","store_op":"cat","object":"release/app/bin","terminal":false}
//! {"op":"store","store_op":"pin","pin_op":"add","name":"app","object":"HASH"}
//! {"op":"name","name_op":"zone","zone_op":"ls"}
//! {"op":"exec","argv":["make"],"on":"os=macos","inputs":["src=/home/u/src"],..}
//! {"op":"job","job_op":"attach","id":"3f2a9c0d","stdout_from":120,"stderr_from":0}
//! ```
//!
//! A REPLY is an [`crate::api::Reply`]: an object whose one key names the
//! concern (`node` for `id`, `status` and `stop`; `store`, `trust`,
//! `peers`, `name`; `job` for `exec` and the `job` commands), holding that concern's reply, tagged by `reply` with
//! its content in `value`:
//!
//! ```text
//! {"node":{"reply":"stopping","value":{"pid":4242,"control_socket":"/home/u/.clive/control.sock"}}}
//! {"store":{"reply":"written","value":{"bytes":3}}}
//! {"name":{"reply":"names_published","value":[]}}
//! ```
//!
//! Version 4 (this one) added ERR_DATA (a job's standard error, as `exec`
//! streams it) and CANCEL (Ctrl-C on `exec`); version 3 nested the
//! replies by concern as version 2 had nested the requests; version 1 had
//! one flat `op` per command.
//!
//! One connection carries one call:
//!
//! ```text
//! client -> HELLO                    (pid absent)
//! daemon -> HELLO                    (or ERROR, and closes, if it does not speak that version)
//! client -> REQUEST
//! client -> DATA* END                only when the request reads standard input (`add -`)
//! client -> CANCEL?                  any time, when the request does not read standard input
//! daemon -> (DATA | ERR_DATA | PROGRESS)*
//!                                    the call's standard output (`cat`) and error (`exec`)
//! daemon -> REPLY_PART* REPLY | ERROR
//! ```
//!
//! After the reply to `stop` the daemon keeps the connection open until it
//! has stopped (socket removed, store closed, home released), so the client
//! learns that from the end of the connection.
//!
//! The daemon waits at most 10 s for HELLO and REQUEST. A frame that is too
//! long, of an unknown kind, out of place or that does not decode ends the
//! connection with an ERROR saying why; a client that leaves during a call
//! cancels the call (a job it started keeps running; CANCEL is what cancels
//! the job). The JSON of a reply may span frames (up to 256 MiB in
//! all); every other message fits in one frame. ERROR messages hold the
//! whole chain of causes, so a client prints the same text whether a call
//! ran in the daemon or in-process.

pub mod client;
mod protocol;
pub(crate) mod server;
pub mod wire;

pub use self::{
    client::{Connection, ControlClient},
    protocol::{ErrorMessage, Hello, MAX_REPLY, PROTOCOL, VERSION},
};

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use clive_cas::Progress;

    use super::{
        client::{Failure, read_reply},
        server::send_reply,
        wire::{Kind, ProgressSnapshot, write_frame},
    };
    use crate::{
        PeerInfo,
        api::{CallOutput, PeerReply, Reply},
    };

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(&'static str, u64)>>);

    impl Progress for Recorded {
        fn set_total(&self, bytes: u64) {
            self.0.lock().unwrap().push(("total", bytes));
        }
        fn advance(&self, bytes: u64) {
            self.0.lock().unwrap().push(("advance", bytes));
        }
    }

    #[tokio::test]
    async fn data_progress_and_a_reply_larger_than_a_frame_arrive_intact() {
        let reply = Reply::Peers(PeerReply::Peers(vec![PeerInfo {
            endpoint_id: "e".repeat(64),
            fingerprint: "SHA256:x".into(),
            // More than one frame of JSON.
            addrs: vec!["a".repeat(20 << 20)],
            connected: false,
            last_seen: None,
        }]));
        let mut wire = Vec::new();
        let snap = |total, done| ProgressSnapshot { total, done }.encode();
        write_frame(&mut wire, Kind::Progress, &snap(None, 5))
            .await
            .unwrap();
        write_frame(&mut wire, Kind::Data, b"hello ").await.unwrap();
        write_frame(&mut wire, Kind::Progress, &snap(Some(100), 50))
            .await
            .unwrap();
        write_frame(&mut wire, Kind::Data, b"world").await.unwrap();
        write_frame(&mut wire, Kind::Progress, &snap(Some(100), 100))
            .await
            .unwrap();
        send_reply(&mut wire, &reply).await.unwrap();

        let mut stdout = Vec::new();
        let progress = Recorded::default();
        let got = match read_reply(
            &mut &wire[..],
            CallOutput {
                stdout: &mut stdout,
                stderr: &mut tokio::io::sink(),
            },
            &progress,
        )
        .await
        {
            Ok(got) => got,
            Err(Failure::Wire(e)) => panic!("{e}"),
            Err(Failure::Api(e)) => panic!("{e}"),
        };
        assert_eq!(got, reply);
        assert_eq!(stdout, b"hello world");
        assert_eq!(
            *progress.0.lock().unwrap(),
            [
                ("advance", 5),
                ("total", 100),
                ("advance", 45),
                ("advance", 50)
            ]
        );
    }

    #[tokio::test]
    async fn an_error_frame_is_the_daemons_message_and_a_cut_is_an_error() {
        let mut wire = Vec::new();
        write_frame(
            &mut wire,
            Kind::Error,
            br#"{"message":"adding x: no such file"}"#,
        )
        .await
        .unwrap();
        let mut stdout = Vec::new();
        let progress = Recorded::default();
        match read_reply(
            &mut &wire[..],
            CallOutput {
                stdout: &mut stdout,
                stderr: &mut tokio::io::sink(),
            },
            &progress,
        )
        .await
        {
            Err(Failure::Api(e)) => assert_eq!(e.to_string(), "adding x: no such file"),
            _ => panic!("expected the daemon's error"),
        }
        let mut cut = Vec::new();
        write_frame(&mut cut, Kind::Data, b"partial").await.unwrap();
        assert!(matches!(
            read_reply(
                &mut &cut[..],
                CallOutput {
                    stdout: &mut stdout,
                    stderr: &mut tokio::io::sink()
                },
                &progress
            )
            .await,
            Err(Failure::Wire(_))
        ));
    }
}
