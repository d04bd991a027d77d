//! Sizes as `config.toml` and job files write them: a number of bytes
//! followed by an optional unit, `B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB` or
//! `T`/`TiB` (powers of 1024), with or without a space: `1 GiB`, `512MiB`,
//! `64K`, `1000`. The one reader of sizes: `jobfile::parse_size` wraps it
//! with its error, and `platform` (the `[jobs]` section) reads sizes with
//! it without depending on `jobfile`.

/// The bytes `s` spells, or None when it is not a size (or overflows).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn reads_the_spellings_of_job_files() {
        for (text, bytes) in [
            ("1000", 1000),
            ("7 B", 7),
            ("64K", 64 << 10),
            ("512MiB", 512 << 20),
            (" 10 GiB ", 10 << 30),
            ("2T", 2 << 40),
        ] {
            assert_eq!(parse_size(text), Some(bytes), "{text}");
            let job = crate::jobs::jobfile::parse_size("size", text).unwrap();
            assert_eq!(job, bytes, "the job file reads {text} alike");
        }
        for text in ["", "GiB", "1 GB", "-1", "1.5G", "99999999999T"] {
            assert_eq!(parse_size(text), None, "{text}");
            assert!(crate::jobs::jobfile::parse_size("size", text).is_err());
        }
    }
}
