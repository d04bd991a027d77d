//! Links the `clive-node` binary as a position-dependent executable: its
//! ~50,000 relative relocations are then resolved by the linker instead of
//! by the loader at every start, which touched some 200 pages of
//! `.data.rel.ro` each time. Quick commands (`name resolve`) are mostly
//! process start, and on a virtual machine each page fault costs
//! microseconds. (The code is still position-independent; only the
//! executable's load address is fixed, as in most distribution binaries
//! built without PIE.)

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
