//! Names for containers created without `--name`: an adjective and the
//! name of a harbour, as Docker pairs an adjective with a scientist.

const ADJECTIVES: [&str; 24] = [
    "brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "noble", "proud", "quiet",
    "rapid", "sharp", "steady", "swift", "tidy", "upbeat", "vivid", "witty", "zen",
];

const HARBOURS: [&str; 24] = [
    "antwerp",
    "bergen",
    "busan",
    "cadiz",
    "colombo",
    "dakar",
    "durban",
    "genoa",
    "halifax",
    "hamburg",
    "kobe",
    "lagos",
    "lisbon",
    "malmo",
    "marseille",
    "mombasa",
    "napier",
    "oslo",
    "piraeus",
    "rotterdam",
    "santos",
    "tallinn",
    "valparaiso",
    "yokohama",
];

/// A random name, `adjective_harbour`, or with a number after it once the
/// plain pairs in use make a clash likely; `taken` says which are.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut bytes = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    let mut n = u64::from_le_bytes(bytes);
    for attempt in 0..1000u64 {
        let a = ADJECTIVES[(n % 24) as usize];
        let h = HARBOURS[(n / 24 % 24) as usize];
        let name = if attempt < 10 {
            format!("{a}_{h}")
        } else {
            format!("{a}_{h}{}", n % 1000)
        };
        if !taken(&name) {
            return name;
        }
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    }
    format!("berth_{}", crate::container::new_id().get(..12).unwrap_or("0"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_avoid_taken_ones() {
        let first = super::generate(|_| false);
        assert!(first.contains('_'));
        let other = super::generate(|n| n == first);
        assert_ne!(other, first);
        assert!(crate::container::valid_name(&other).is_ok());
    }
}
