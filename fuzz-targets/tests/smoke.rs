//! The fuzz smoke `scripts/test` runs: every fuzz target's property (see
//! `clive_fuzz_targets`) on each of its seeds in `fuzz/seeds/TARGET/`, each
//! crash input kept in `fuzz/regressions/TARGET/`, and a bounded number of
//! deterministic mutations of each (truncations, deletions, bit flips,
//! insertions, sweeps of one byte over all 256 values, repetitions and
//! random stacked edits from a fixed seed). A panic fails the target's test
//! and prints the input. Full fuzzing is `scripts/fuzz`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    fs,
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
};

/// About how many inputs each target runs, shared among its seeds.
const BUDGET: usize = 6000;

/// Bytes that often sit at a format's boundaries: inserted at a few places.
const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff0-9\"\\{}[],:\n ";

/// One test per target, and the list of them (checked against the targets).
macro_rules! smoke {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                smoke(stringify!($target), clive_fuzz_targets::$target);
            }
        )*
        const SMOKED: &[&str] = &[$(stringify!($target)),*];
    };
}

smoke!(
    tree,
    cert_body,
    certificate,
    revocation,
    ticket,
    zone_ticket,
    peer_wire,
    control_frames,
    announcement,
    tuf_root,
    tuf_targets,
    tuf_snapshot,
    tuf_timestamp,
    canonical_json,
    naming_records,
    net_records,
    job_documents,
);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files in `dir`, sorted by name; none when it does not exist.
fn inputs_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("a directory entry reads"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let data = fs::read(e.path()).unwrap_or_else(|err| panic!("{name}: {err}"));
            (name, data)
        })
        .collect();
    files.sort();
    files
}

/// The names of the entries of `dir` ending in `suffix`, without it, sorted.
fn names_in(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry reads").file_name())
        .filter_map(|n| n.to_str()?.strip_suffix(suffix).map(str::to_owned))
        .filter(|n| !n.contains('.'))
        .collect();
    names.sort();
    names
}

/// SplitMix64: a fixed sequence from a fixed start, so every run (and a
/// failure's rerun) feeds the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (which is not 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` positions spread evenly over `0..len` (all of them when fewer).
fn spread(len: usize, count: usize) -> Vec<usize> {
    if len <= count {
        return (0..len).collect();
    }
    (0..count).map(|i| i * len / count).collect()
}

/// The seed and about `budget` deterministic mutations of it, each with a
/// description of how it was made.
fn mutations(seed: &[u8], budget: usize, rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let n = seed.len();
    let mut out = vec![("as is".to_owned(), seed.to_vec())];
    for len in spread(n, budget / 16) {
        out.push((format!("truncated to {len}"), seed[..len].to_vec()));
    }
    for at in spread(n, budget / 16) {
        let mut m = seed.to_vec();
        m.remove(at);
        out.push((format!("byte {at} deleted"), m));
    }
    for bit in spread(n * 8, budget / 4) {
        let mut m = seed.to_vec();
        m[bit / 8] ^= 1 << (bit % 8);
        out.push((format!("bit {bit} flipped"), m));
    }
    for at in spread(n + 1, (budget / 8 / INTERESTING.len()).max(2)) {
        for &b in INTERESTING {
            let mut m = seed.to_vec();
            m.insert(at, b);
            out.push((format!("{b:#04x} inserted at {at}"), m));
        }
    }
    // The first byte picks a mode or a table in many targets: it is always
    // swept.
    let sweeps = (budget / 4 / 256).max(1);
    let mut swept = spread(n, sweeps);
    if n > 0 && sweeps > 1 {
        swept.push(rng.below(n));
    }
    for at in swept {
        for b in 0..=255u8 {
            let mut m = seed.to_vec();
            m[at] = b;
            out.push((format!("byte {at} set to {b:#04x}"), m));
        }
    }
    out.push(("doubled".to_owned(), seed.repeat(2)));
    out.push((
        "followed by 4096 zeros".to_owned(),
        [seed, &[0; 4096]].concat(),
    ));
    out.push((
        "followed by 4096 0xff".to_owned(),
        [seed, &[0xff; 4096]].concat(),
    ));
    while out.len() < budget {
        let mut m = seed.to_vec();
        let edits = 1 + rng.below(8);
        for _ in 0..edits {
            havoc(&mut m, rng);
        }
        out.push((format!("{edits} random edits (#{})", out.len()), m));
    }
    out
}

/// One random edit of `m`: a byte set, inserted, deleted or a span copied.
fn havoc(m: &mut Vec<u8>, rng: &mut Rng) {
    let len = m.len();
    match rng.below(5) {
        0 if len > 0 => {
            let at = rng.below(len);
            m[at] = rng.next() as u8;
        }
        1 if len > 0 => {
            let at = rng.below(len);
            m[at] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 if len > 0 => {
            m.remove(rng.below(len));
        }
        3 if len > 0 => {
            let from = rng.below(len);
            let to = from + rng.below((len - from).min(64)) + 1;
            let span = m[from..to].to_vec();
            let at = rng.below(len + 1);
            m.splice(at..at, span);
        }
        _ => {
            let at = rng.below(len + 1);
            m.insert(at, rng.next() as u8);
        }
    }
}

/// Runs `property` on every input of `target`; panics, naming the input,
/// at the first one it panics on.
fn smoke(target: &str, property: clive_fuzz_targets::Property) {
    let seeds = inputs_in(&fuzz_dir().join("seeds").join(target));
    assert!(
        !seeds.is_empty(),
        "{target} has no seeds in fuzz/seeds/{target}"
    );
    let regressions = inputs_in(&fuzz_dir().join("regressions").join(target));
    let budget = BUDGET / (seeds.len() + regressions.len());
    let mut rng = Rng(target.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }));
    let mut runs = 0;
    let sources = seeds
        .iter()
        .map(|s| ("fuzz/seeds", s))
        .chain(regressions.iter().map(|r| ("fuzz/regressions", r)));
    for (dir, (name, seed)) in sources {
        for (how, input) in mutations(seed, budget, &mut rng) {
            runs += 1;
            if panic::catch_unwind(AssertUnwindSafe(|| property(&input))).is_err() {
                let shown: String = input.iter().take(512).map(|b| format!("{b:02x}")).collect();
                panic!(
                    "{target} panicked on {dir}/{target}/{name}, {how} ({} bytes): {shown}{}\n\
                     Keep the input as fuzz/regressions/{target}/NAME once fixed.",
                    input.len(),
                    if input.len() > 512 { "..." } else { "" },
                );
            }
        }
    }
    println!(
        "{target}: {runs} inputs from {} seeds and {} regression inputs",
        seeds.len(),
        regressions.len()
    );
    assert!(runs >= 2000, "{target} ran only {runs} inputs");
}

/// Every fuzz target (a file in fuzz/fuzz_targets/, a `[[bin]]` of
/// fuzz/Cargo.toml, a directory of seeds) is a function of the library
/// that its file calls, and has its test here.
#[test]
fn every_fuzz_target_is_smoked() {
    let mut targets: Vec<&str> = clive_fuzz_targets::TARGETS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    targets.sort();
    let mut smoked = SMOKED.to_vec();
    smoked.sort();
    assert_eq!(smoked, targets, "a target without a smoke test");
    let files = names_in(&fuzz_dir().join("fuzz_targets"), ".rs");
    assert_eq!(files, targets, "fuzz/fuzz_targets/ and TARGETS differ");
    let seeds = names_in(&fuzz_dir().join("seeds"), "");
    assert_eq!(seeds, targets, "fuzz/seeds/ and TARGETS differ");
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for t in &targets {
        let file = fuzz_dir().join("fuzz_targets").join(format!("{t}.rs"));
        let source = fs::read_to_string(&file).expect("a fuzz target reads");
        assert!(
            source.contains(&format!("clive_fuzz_targets::{t}(data)")),
            "{} does not run clive_fuzz_targets::{t}",
            file.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{t}\"\npath = \"fuzz_targets/{t}.rs\"")),
            "fuzz/Cargo.toml has no [[bin]] {t}"
        );
    }
}
