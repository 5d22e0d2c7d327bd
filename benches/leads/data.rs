//! The generated tenant: every lead's fields drawn from its index by a fixed hash, so a run is
//! reproducible and a query can name a value that exists (a surname, a phone) without reading
//! the data back.
//!
//! Selectivity (share of the tenant; `status` is set afterwards by PATCH, see [`status`]):
//! - stage: new 40 %, contacted 25 %, qualified 15 %, won 10 %, lost 10 % (the default stages);
//! - owner: none 15 %, else one of [`OWNERS`] owners, evenly;
//! - `lead_line`: buyer 45 %, seller 35 %, unset 20 %;
//! - status: active 80 %, won 6 %, lost 6 %, nurture 5 %, archived 3 %;
//! - name: one of 40 first names and a 4-syllable surname (16^4 = 65,536 surnames, about 15
//!   leads each at a million); email `first.surname{i}@domain` on [`DOMAINS`] (gmail.com 40 %),
//!   every one ending in `.com`; a phone on 80 % of leads, `(AAA) BBB-CCCC` on 8 area codes
//!   with the last 7 digits a permutation of the index (no two leads merge).

use serde_json::{Value, json};

pub const STAGES: [(&str, u32); 5] = [
    ("new", 40),
    ("contacted", 25),
    ("qualified", 15),
    ("won", 10),
    ("lost", 10),
];
pub const OWNERS: usize = 8;
pub const LEAD_LINES: [(Option<&str>, u32); 3] =
    [(Some("buyer"), 45), (Some("seller"), 35), (None, 20)];
/// Every lead's status; all but `active` are given by PATCH after the import.
pub const STATUSES: [(&str, u32); 5] = [
    ("active", 80),
    ("won", 6),
    ("lost", 6),
    ("nurture", 5),
    ("archived", 3),
];
pub const DOMAINS: [(&str, u32); 7] = [
    ("gmail.com", 40),
    ("yahoo.com", 15),
    ("outlook.com", 15),
    ("hotmail.com", 10),
    ("icloud.com", 8),
    ("acme-realty.com", 7),
    ("brightpath.com", 5),
];
/// The domain a search for "the common email domain" names (40 % of leads).
pub const COMMON_DOMAIN: &str = "gmail.com";
/// In every lead's email.
pub const EVERY_LEAD: &str = ".com";
const PHONE_SHARE: u64 = 80;
const AREA_CODES: [&str; 8] = ["206", "212", "305", "312", "415", "512", "617", "702"];
const FIRST_NAMES: [&str; 40] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Maria", "James",
    "Linda", "Robert", "Susan", "Michael", "Karen", "David", "Nancy", "William", "Lisa", "Joseph",
    "Sofia", "Liam", "Emma", "Noah", "Olivia", "Lucas", "Mia", "Ethan", "Chloe", "Mateo", "Aisha",
    "Omar", "Yuki", "Hiro", "Priya", "Ravi", "Elena", "Ivan", "Fatima", "Tariq",
];
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ran", "te", "vo", "sel", "du", "ni", "bor", "ha", "quin", "ze", "pa", "lim",
    "gor",
];
const PLATFORMS: [&str; 6] = [
    "google_ads",
    "meta_ads",
    "google_organic",
    "direct",
    "referral",
    "hubspot",
];

/// One line for the header: each field's shares.
pub fn describe() -> String {
    fn shares<T: Copy>(table: &[(T, u32)], name: impl Fn(T) -> &'static str) -> String {
        let parts: Vec<String> = table
            .iter()
            .map(|&(v, w)| format!("{} {w}", name(v)))
            .collect();
        parts.join("/")
    }
    format!(
        "status {} %; stage {} %; lead_line {} %; {OWNERS} owners, 15 % unowned; email on {} .com domains ({COMMON_DOMAIN} {} %); phone on {PHONE_SHARE} %; ~{} leads per surname at 1 M",
        shares(&STATUSES, |s| s),
        shares(&STAGES, |s| s),
        shares(&LEAD_LINES, |l| l.unwrap_or("unset")),
        DOMAINS.len(),
        DOMAINS[0].1,
        1_000_000 / SYLLABLES.len().pow(4),
    )
}

/// splitmix64 of `i` under `salt`: independent-looking bits per (lead, field).
pub fn mix(i: u64, salt: u64) -> u64 {
    let mut z = i
        .wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The value whose weight band (of 100) `h` falls in.
fn weighted<T: Copy>(h: u64, table: &[(T, u32)]) -> T {
    let mut at = (h % 100) as u32;
    for &(value, weight) in table {
        if at < weight {
            return value;
        }
        at -= weight;
    }
    table[table.len() - 1].0
}

/// A seeded stream of picks for the queries.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 += 1;
        mix(self.0, 7) % n
    }

    pub fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len() as u64) as usize]
    }
}

pub fn surname(i: u64) -> String {
    let h = mix(i, 1);
    let word: String = (0..4)
        .map(|k| SYLLABLES[((h >> (4 * k)) & 15) as usize])
        .collect();
    let mut chars = word.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_ascii_uppercase().to_string() + chars.as_str()
    })
}

fn first_name(i: u64) -> &'static str {
    FIRST_NAMES[(mix(i, 2) % FIRST_NAMES.len() as u64) as usize]
}

/// `(AAA) BBB-CCCC`, or none.
pub fn phone(i: u64) -> Option<String> {
    if mix(i, 3) % 100 >= PHONE_SHARE {
        return None;
    }
    let area = AREA_CODES[(mix(i, 4) % AREA_CODES.len() as u64) as usize];
    // A bijection of 0..10^7 (7,654,321 is coprime with 10): no two leads share the digits.
    let line = (i.wrapping_mul(7_654_321).wrapping_add(1_234_567)) % 10_000_000;
    Some(format!(
        "({area}) {:03}-{:04}",
        line / 10_000,
        line % 10_000
    ))
}

/// The index of the lead's owner in the tenant's owner list, or none.
fn owner(i: u64) -> Option<usize> {
    let h = mix(i, 5);
    (h % 100 >= 15).then(|| ((h / 100) % OWNERS as u64) as usize)
}

/// The status the lead ends with (`active` needs no PATCH).
pub fn status(i: u64) -> &'static str {
    weighted(mix(i, 6), &STATUSES)
}

/// The create body of lead `i` (a bulk row adds `row_ref`); `owners` are the tenant's owner ids.
pub fn lead(i: u64, owners: &[String]) -> Value {
    let first = first_name(i);
    let last = surname(i);
    let domain = weighted(mix(i, 7), &DOMAINS);
    let mut body = json!({
        "contact_name": format!("{first} {last}"),
        "contact_email": format!("{}.{}{i}@{domain}", first.to_lowercase(), last.to_lowercase()),
        "source_platform": PLATFORMS[(mix(i, 8) % PLATFORMS.len() as u64) as usize],
        "stage_slug": weighted(mix(i, 9), &STAGES),
    });
    if let Some(phone) = phone(i) {
        body["contact_phone"] = phone.into();
    }
    if let Some(o) = owner(i) {
        body["owner_id"] = owners[o].clone().into();
    }
    if let Some(line) = weighted(mix(i, 10), &LEAD_LINES) {
        body["lead_line"] = line.into();
    }
    body
}
