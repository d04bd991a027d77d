//! What the in-process network tests share: a node on loopback with its
//! services ([`TestPeer`]), a dishonest peer ([`Liar`]), and waiting.

use std::{os::unix::fs::MetadataExt, path::Path, sync::Arc, time::Duration};

use clive_node::{
    Home, InitOptions, NetOptions, Node, PassphraseSource, SignWith,
    cas::NoProgress,
    clive_trust::{Clock, ManualClock, SystemClock},
    daemon::Services,
};

pub struct NoPassphrase;

impl PassphraseSource for NoPassphrase {
    fn passphrase(&self, _: &Path) -> Option<String> {
        None
    }
}

pub fn sign() -> SignWith<'static> {
    SignWith {
        agent: false,
        agent_socket: None,
        passphrase: &NoPassphrase,
    }
}

/// One node of the cluster: its home in a temp dir, online on 127.0.0.1.
pub struct TestPeer {
    pub dir: tempfile::TempDir,
    pub node: Option<Arc<Node>>,
    /// The daemon's background services (keepers, announcer, re-signer).
    pub services: Option<Services>,
    /// The node's own clock: set by the test, not by sleeping.
    pub clock: ManualClock,
}

impl TestPeer {
    pub async fn start() -> TestPeer {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        Node::init(&home, InitOptions::default(), &NoPassphrase)
            .await
            .unwrap();
        std::fs::write(home.config_path(), "[net]\nbind = [\"127.0.0.1:0\"]\n").unwrap();
        let mut peer = TestPeer {
            dir,
            node: None,
            services: None,
            clock: ManualClock::new(SystemClock.now()),
        };
        peer.restart().await;
        peer
    }

    pub fn home(&self) -> Home {
        Home::new(self.dir.path().join("home"))
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node is running")
    }

    pub fn id(&self) -> String {
        self.node().identity().endpoint_id
    }

    pub async fn stop_services(&mut self) {
        if let Some(services) = self.services.take() {
            services.stop().await;
        }
    }

    pub async fn stop(&mut self) {
        self.stop_services().await;
        if let Some(node) = self.node.take() {
            let node = Arc::try_unwrap(node).expect("the services released the node");
            node.close().await.unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        let node = Node::open(&self.home(), Arc::new(self.clock.clone()))
            .await
            .unwrap();
        node.start_net(NetOptions {
            bind: vec!["127.0.0.1:0".parse().unwrap()],
            ..Default::default()
        })
        .await
        .unwrap();
        let node = Arc::new(node);
        self.services = Some(Services::start(&node).await.unwrap());
        self.node = Some(node);
    }

    /// Invites and joins `joiner` with `caps`; returns the joiner's cert id.
    pub async fn admit(&self, joiner: &TestPeer, caps: &str) -> String {
        let invite = self
            .node()
            .peers()
            .invite(caps, Duration::from_secs(600), 1)
            .await
            .unwrap();
        let joined = joiner.node().peers().join(&invite.ticket).await.unwrap();
        assert_eq!(joined.peer.endpoint_id, self.id());
        joined.cert.id
    }

    /// Adds `path` (pinned as `pin`, if given) and returns its hash.
    pub async fn add(&self, path: &Path, pin: Option<&str>) -> clive_node::cas::Hash {
        self.node()
            .store()
            .add_path(path, pin, Arc::new(NoProgress))
            .await
            .unwrap()
            .added
            .hash
    }

    pub async fn connected_to(&self, other: &TestPeer) -> bool {
        let id = other.id();
        self.node()
            .peers()
            .list()
            .await
            .unwrap()
            .iter()
            .any(|p| p.endpoint_id == id && p.connected)
    }
}

/// Waits (bounded) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A peer that answers every blob request (whatever ranges it asks for)
/// with the right size and the right hash tree, but a flipped byte in
/// every 16 KiB group of the data: a dishonest peer, not just a damaged
/// disk (iroh-blobs' own provider catches that itself). Nothing it sends
/// can pass verification.
#[derive(Debug, Clone)]
pub struct Liar {
    lie: Arc<Vec<u8>>,
    outboard: Arc<bao_tree::io::outboard::PreOrderMemOutboard>,
}

impl Liar {
    /// A liar about `truth`.
    pub fn new(truth: &[u8]) -> Liar {
        use bao_tree::{BlockSize, io::outboard::PreOrderMemOutboard};
        let outboard = PreOrderMemOutboard::create(truth, BlockSize::from_chunk_log(4));
        let mut lie = truth.to_vec();
        for at in (0..lie.len()).step_by(16 << 10) {
            lie[at] ^= 0xff;
        }
        Liar {
            lie: Arc::new(lie),
            outboard: Arc::new(outboard),
        }
    }

    /// Serves lies on 127.0.0.1; returns its router, id and address.
    pub async fn serve(self) -> (iroh::protocol::Router, String, String) {
        let endpoint = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
            .clear_ip_transports()
            .bind_addr("127.0.0.1:0")
            .unwrap()
            .relay_mode(iroh::RelayMode::Disabled)
            .bind()
            .await
            .unwrap();
        let id = hex_id(endpoint.id().as_bytes());
        let addr = endpoint.addr().ip_addrs().next().unwrap().to_string();
        let router = iroh::protocol::Router::builder(endpoint)
            .accept(iroh_blobs::ALPN, self)
            .spawn();
        (router, id, addr)
    }

    /// The encoded answer to a request for `ranges`: the size, then the
    /// ranges' parents and (false) leaves.
    fn answer(&self, ranges: &bao_tree::ChunkRanges) -> Vec<u8> {
        let mut answer = (self.lie.len() as u64).to_le_bytes().to_vec();
        let _ =
            bao_tree::io::sync::encode_ranges(&self.lie[..], &*self.outboard, ranges, &mut answer);
        answer
    }
}

impl iroh::protocol::ProtocolHandler for Liar {
    async fn accept(
        &self,
        conn: iroh::endpoint::Connection,
    ) -> Result<(), iroh::protocol::AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let this = self.clone();
            tokio::spawn(async move {
                let Ok((iroh_blobs::protocol::Request::Get(get), _)) =
                    iroh_blobs::protocol::Request::read_async(&mut recv).await
                else {
                    return;
                };
                let ranges = get
                    .ranges
                    .iter()
                    .next()
                    .cloned()
                    .unwrap_or_else(bao_tree::ChunkRanges::all);
                let _ = send.write_all(&this.answer(&ranges)).await;
                let _ = send.finish();
                let _ = send.stopped().await;
            });
        }
        Ok(())
    }
}

/// An endpoint id as the CLI and the API spell it.
pub fn hex_id(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes actually written to a file (its blocks, not its length, which a
/// sparse file overstates).
pub fn stored_bytes(path: &Path) -> u64 {
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}
