//! Lead contact data: parse-don't-validate newtypes for e-mail addresses and
//! phone numbers, plus the search predicate that matches leads by name, e-mail
//! or phone digits.
//!
//! Values of [`Email`] and [`Phone`] only exist in their normalised stored
//! form, so code holding one never has to re-check or re-normalise it. Both
//! parsers reject empty input: a caller that wants an empty string to mean
//! "no e-mail" / "no phone" must map it to `None` *before* calling `parse`.

use std::fmt;

/// Longest accepted e-mail address, in characters (spec: "≤254 chars").
const EMAIL_MAX_CHARS: usize = 254;
/// Longest local part (before the `@`), per RFC 5321.
const EMAIL_LOCAL_MAX_CHARS: usize = 64;
/// Longest domain label, per RFC 1035.
const DOMAIN_LABEL_MAX_CHARS: usize = 63;
/// E.164 caps a full international number at 15 digits.
const PHONE_MAX_DIGITS: usize = 15;
/// Numbers with fewer digits than this are kept as typed and never match.
const PHONE_MATCH_DIGITS: usize = 10;
/// A search query needs this many digits before it is tried against phones,
/// so that short numbers in a name query ("Suite 4") don't match every phone.
const SEARCH_MIN_DIGITS: usize = 3;

/// Why a contact field was rejected. `Display` gives a message naming the
/// request field, suitable as-is for an HTTP 400 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactError {
    /// The e-mail was empty or whitespace only.
    EmailEmpty,
    /// The trimmed, lower-cased e-mail has more than 254 characters.
    EmailTooLong,
    /// The e-mail does not have the `local@domain.tld` shape.
    EmailInvalid,
    /// The phone was empty, whitespace only, or contained no digit at all.
    PhoneNoDigits,
    /// The phone contained a character that is neither a digit, a separator
    /// nor a leading `+` (letters, `#`, a second `+`, ...).
    PhoneInvalidCharacter(char),
    /// The phone has more digits than E.164 allows (15).
    PhoneTooLong,
}

impl fmt::Display for ContactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmailEmpty => f.write_str("contact_email must not be empty"),
            Self::EmailTooLong => write!(
                f,
                "contact_email is longer than {EMAIL_MAX_CHARS} characters"
            ),
            Self::EmailInvalid => f.write_str("contact_email must look like local@domain.tld"),
            Self::PhoneNoDigits => f.write_str("contact_phone must contain digits"),
            Self::PhoneInvalidCharacter(c) => write!(
                f,
                "contact_phone contains {c:?}; only digits, spaces, ( ) - . / and a leading + are allowed"
            ),
            Self::PhoneTooLong => {
                write!(f, "contact_phone has more than {PHONE_MAX_DIGITS} digits")
            }
        }
    }
}

impl std::error::Error for ContactError {}

/// A normalised e-mail address: trimmed, lower-cased, shaped like
/// `local@domain.tld`.
///
/// Lower-casing the whole address (local part included) is a deliberate
/// simplification: it is what makes "same normalised email" a plain string
/// comparison for lead merging, and virtually no real mailbox is
/// case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Trims surrounding whitespace, lower-cases with [`str::to_lowercase`]
    /// (Unicode-aware), then checks the shape.
    ///
    /// The length limit (254) is counted in characters of the *normalised*
    /// value, because that is what gets stored. "Looks like
    /// `local@domain.tld`" means:
    /// - exactly one `@`, and no whitespace or control characters anywhere;
    /// - a non-empty local part of at most 64 characters. Beyond that the
    ///   local part is not checked (dots, `+`, non-ASCII are all allowed):
    ///   it belongs to the receiving mail server and over-strict checks
    ///   reject real addresses;
    /// - a domain of at least two dot-separated labels, each 1–63 ASCII
    ///   letters, digits or hyphens, not starting or ending with a hyphen
    ///   (internationalised domains must arrive in punycode);
    /// - a final label (TLD) of at least two ASCII letters, or a punycode
    ///   TLD (`xn--…`), since digits-only TLDs do not exist and a numeric
    ///   TLD usually means an IP address was typed.
    pub fn parse(raw: &str) -> Result<Email, ContactError> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(ContactError::EmailEmpty);
        }
        if normalised.chars().count() > EMAIL_MAX_CHARS {
            return Err(ContactError::EmailTooLong);
        }
        if is_email_shaped(&normalised) {
            Ok(Email(normalised))
        } else {
            Err(ContactError::EmailInvalid)
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_email_shaped(s: &str) -> bool {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => is_valid_local_part(local) && is_valid_domain(domain),
        None => false,
    }
}

fn is_valid_local_part(local: &str) -> bool {
    !local.is_empty() && local.chars().count() <= EMAIL_LOCAL_MAX_CHARS
}

/// Also rejects a second `@`, which would land in the domain.
fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    match labels.split_last() {
        Some((tld, rest)) if !rest.is_empty() => {
            labels.iter().all(|label| is_valid_domain_label(label)) && is_valid_tld(tld)
        }
        _ => false,
    }
}

fn is_valid_domain_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= DOMAIN_LABEL_MAX_CHARS
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn is_valid_tld(tld: &str) -> bool {
    let alphabetic = tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic());
    alphabetic || tld.starts_with("xn--")
}

/// A phone number in its stored form.
///
/// Numbers with at least 10 digits are stored as `+` followed by digits
/// only (E.164-like), so two spellings of the same number compare equal.
/// Shorter numbers (extensions, local numbers) cannot be placed in a
/// numbering plan, so they are stored as typed (trimmed) and never take part
/// in phone matching: [`Phone::last10`] returns `None` for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    stored: String,
}

impl Phone {
    /// Parses and normalises a phone number.
    ///
    /// `default_country_code` is digits only, e.g. `"1"` (config
    /// `leads.default_country_code`, 1–3 digits). It is a precondition
    /// checked when the config is loaded, not here: a bad value is an
    /// operator error, not a 400 for the API client.
    ///
    /// Rules, applied to the trimmed input:
    /// - Allowed characters are ASCII digits, whitespace, the separators
    ///   `( ) - . /`, and `+` as the very first character. Anything else
    ///   (letters, so also `ext`/`x` extensions, `#`, `*`, a second `+`) is
    ///   [`ContactError::PhoneInvalidCharacter`]: silently dropping letters
    ///   would store a different number than the user meant.
    /// - No digit at all (including empty or whitespace-only input) is
    ///   [`ContactError::PhoneNoDigits`].
    /// - More than 15 digits (the E.164 maximum) is
    ///   [`ContactError::PhoneTooLong`], with or without `+`.
    /// - Fewer than 10 digits: stored as given (trimmed), with or without `+`.
    /// - A leading `+`: `+` and exactly its digits; the default country code
    ///   is never added (`+44 20 7946 0958` → `+442079460958`).
    /// - Exactly 10 digits, no `+`: `+{default_country_code}{digits}`
    ///   (`(206) 555-0123` → `+12065550123`).
    /// - 11 or more digits, no `+`: `+{digits}`. The spec lists "11 digits
    ///   starting with the default country code" separately, but it yields
    ///   the same result as this general rule, so there is one code path.
    ///   A national trunk prefix is not stripped (`020 7946 0958` →
    ///   `+02079460958`): guessing per-country trunk rules is out of scope.
    pub fn parse(raw: &str, default_country_code: &str) -> Result<Phone, ContactError> {
        debug_assert!(
            is_country_code(default_country_code),
            "leads.default_country_code must be 1-3 digits"
        );
        let trimmed = raw.trim();
        let (has_plus, body) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let digits = phone_digits(body)?;
        let stored = match digits.len() {
            0 => return Err(ContactError::PhoneNoDigits),
            n if n > PHONE_MAX_DIGITS => return Err(ContactError::PhoneTooLong),
            n if n < PHONE_MATCH_DIGITS => trimmed.to_owned(),
            PHONE_MATCH_DIGITS if !has_plus => format!("+{default_country_code}{digits}"),
            _ => format!("+{digits}"),
        };
        Ok(Phone { stored })
    }

    /// The stored form: `"+12065550123"`, or the trimmed input when it has
    /// fewer than 10 digits.
    pub fn as_str(&self) -> &str {
        &self.stored
    }

    /// All digits of the stored form, in order (country code included).
    pub fn digits(&self) -> String {
        ascii_digits(&self.stored)
    }

    /// The last 10 digits as ASCII bytes, the key used to merge leads by
    /// phone; `None` when the number has fewer than 10 digits, because such
    /// numbers are too ambiguous to identify a person.
    pub fn last10(&self) -> Option<[u8; 10]> {
        last10_of(&self.stored)
    }
}

/// [`Phone::last10`] of a phone as stored.
pub fn last10_of(stored: &str) -> Option<[u8; 10]> {
    let digits = ascii_digits(stored);
    let start = digits.len().checked_sub(PHONE_MATCH_DIGITS)?;
    digits.as_bytes().get(start..)?.try_into().ok()
}

fn is_country_code(cc: &str) -> bool {
    (1..=3).contains(&cc.len()) && cc.bytes().all(|b| b.is_ascii_digit())
}

/// Collects the digits of a phone body (the input after any leading `+`),
/// rejecting characters that are neither digits nor separators.
fn phone_digits(body: &str) -> Result<String, ContactError> {
    let mut digits = String::with_capacity(body.len());
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !is_phone_separator(c) {
            return Err(ContactError::PhoneInvalidCharacter(c));
        }
    }
    Ok(digits)
}

fn is_phone_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '-' | '.' | '/')
}

fn ascii_digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The lead search predicate (`q` parameter).
///
/// A lead matches when the trimmed, lower-cased query is a substring of the
/// lower-cased name or e-mail, or — only when the query holds at least three
/// digits — when the query's digits (all formatting ignored) are a substring
/// of the phone's digits. The two tests are OR-ed: a query such as
/// `"alice 206"` is tried both ways. The three-digit minimum keeps short
/// numbers from matching nearly every phone. An empty (or whitespace-only)
/// query matches every lead, so a blank search box filters nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Trimmed and lower-cased query text.
    text: String,
    /// The query's digits, present only when there are at least three.
    digits: Option<String>,
}

impl SearchQuery {
    /// Prepares a query as typed by the user.
    pub fn new(q: &str) -> SearchQuery {
        let text = q.trim().to_lowercase();
        let digits = Some(ascii_digits(&text)).filter(|d| d.len() >= SEARCH_MIN_DIGITS);
        SearchQuery { text, digits }
    }

    /// Whether a lead with these (possibly absent) fields matches. `phone`
    /// may be in any format; only its digits are compared.
    pub fn matches(&self, name: Option<&str>, email: Option<&str>, phone: Option<&str>) -> bool {
        self.text.is_empty() || self.matches_fields(&SearchFields::of(name, email, phone).as_ref())
    }

    /// The same test on fields already in the form search compares (an index keeps them so).
    pub fn matches_fields(&self, fields: &SearchFieldsRef<'_>) -> bool {
        self.text.is_empty()
            || fields.name.contains(&self.text)
            || fields.email.contains(&self.text)
            || self
                .digits
                .as_ref()
                .is_some_and(|digits| fields.digits.contains(digits.as_str()))
    }

    /// The trimmed, lower-cased query; empty means every lead matches.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The query's digits, when there are at least three (then phones are searched too).
    pub fn digits(&self) -> Option<&str> {
        self.digits.as_deref()
    }
}

/// A lead's contact fields as search compares them: the lower-cased name and e-mail and the
/// phone's digits, each empty when absent (no non-empty query is a substring of "").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFields {
    pub name: String,
    pub email: String,
    pub digits: String,
}

impl SearchFields {
    pub fn of(name: Option<&str>, email: Option<&str>, phone: Option<&str>) -> SearchFields {
        SearchFields {
            name: name.map(str::to_lowercase).unwrap_or_default(),
            email: email.map(str::to_lowercase).unwrap_or_default(),
            digits: phone.map(ascii_digits).unwrap_or_default(),
        }
    }

    pub fn as_ref(&self) -> SearchFieldsRef<'_> {
        SearchFieldsRef {
            name: &self.name,
            email: &self.email,
            digits: &self.digits,
        }
    }
}

/// [`SearchFields`] borrowed, e.g. from an index block.
#[derive(Debug, Clone, Copy)]
pub struct SearchFieldsRef<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub digits: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(raw: &str) -> Phone {
        Phone::parse(raw, "1").expect("valid phone")
    }

    fn email_err(raw: &str) -> ContactError {
        Email::parse(raw).expect_err("invalid email")
    }

    // --- Email ---

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Alice@Example.COM ").expect("valid email");
        assert_eq!(email.as_str(), "alice@example.com");
    }

    #[test]
    fn email_lower_cases_unicode() {
        let email = Email::parse("ÉLODIE@Example.fr").expect("valid email");
        assert_eq!(email.as_str(), "élodie@example.fr");
    }

    #[test]
    fn email_accepts_common_shapes() {
        for raw in [
            "a@b.co",
            "first.last+tag@mail.example.com",
            "x@my-domain.io",
            "o'brien@example.ie",
            "user@123.example.com",
            "user@example.xn--p1ai",
        ] {
            assert!(Email::parse(raw).is_ok(), "{raw} should be accepted");
        }
    }

    #[test]
    fn email_equal_after_normalisation() {
        assert_eq!(
            Email::parse("Bob@Example.com"),
            Email::parse(" bob@EXAMPLE.COM")
        );
    }

    #[test]
    fn email_rejects_bad_shapes() {
        for raw in [
            "alice.example.com",
            "alice@@example.com",
            "alice@bob@example.com",
            "alice@example",
            "@example.com",
            "alice@",
            "alice smith@example.com",
            "alice@exa mple.com",
            "alice@.example.com",
            "alice@example..com",
            "alice@example.com.",
            "alice@-example.com",
            "alice@example-.com",
            "alice@exam_ple.com",
            "alice@example.c",
            "alice@example.c0m",
            "alice@10.0.0.1",
            "alice@exämple.com",
            "alice\u{0}@example.com",
        ] {
            assert_eq!(email_err(raw), ContactError::EmailInvalid, "{raw:?}");
        }
    }

    #[test]
    fn email_rejects_empty() {
        assert_eq!(email_err(""), ContactError::EmailEmpty);
        assert_eq!(email_err(" \t "), ContactError::EmailEmpty);
    }

    #[test]
    fn email_local_part_limit_is_64() {
        let ok = format!("{}@example.com", "a".repeat(64));
        let too_long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&ok).is_ok());
        assert_eq!(email_err(&too_long), ContactError::EmailInvalid);
    }

    #[test]
    fn email_domain_label_limit_is_63() {
        let ok = format!("a@{}.com", "d".repeat(63));
        let too_long = format!("a@{}.com", "d".repeat(64));
        assert!(Email::parse(&ok).is_ok());
        assert_eq!(email_err(&too_long), ContactError::EmailInvalid);
    }

    /// A valid-shaped `a@ddd….eee….com` of exactly `len` (≥ 7) characters,
    /// built from 50-character labels so no label exceeds 63.
    fn email_of_len(len: usize) -> String {
        const FIXED: usize = "a@".len() + ".com".len();
        let mut domain = String::new();
        while FIXED + domain.len() + 51 < len {
            domain.push_str(&"d".repeat(50));
            domain.push('.');
        }
        let last = len - FIXED - domain.len();
        format!("a@{domain}{}.com", "e".repeat(last))
    }

    #[test]
    fn email_length_limit_is_254() {
        let ok = email_of_len(254);
        assert_eq!(ok.len(), 254);
        assert!(Email::parse(&ok).is_ok());

        let too_long = email_of_len(255);
        assert_eq!(too_long.len(), 255);
        assert_eq!(email_err(&too_long), ContactError::EmailTooLong);
    }

    #[test]
    fn email_length_ignores_surrounding_whitespace() {
        let padded = format!("  {}  ", email_of_len(254));
        assert!(Email::parse(&padded).is_ok());
    }

    #[test]
    fn email_error_messages_name_the_field() {
        assert_eq!(
            ContactError::EmailInvalid.to_string(),
            "contact_email must look like local@domain.tld"
        );
        assert_eq!(
            ContactError::EmailTooLong.to_string(),
            "contact_email is longer than 254 characters"
        );
        assert_eq!(
            ContactError::EmailEmpty.to_string(),
            "contact_email must not be empty"
        );
    }

    // --- Phone ---

    #[test]
    fn phone_spec_vectors() {
        for (raw, stored) in [
            ("(206) 555-0123", "+12065550123"),
            ("206.555.0123", "+12065550123"),
            ("2065550123", "+12065550123"),
            ("12065550123", "+12065550123"),
            ("+1 (206) 555-0123", "+12065550123"),
            ("+44 20 7946 0958", "+442079460958"),
            ("  206/555 0123  ", "+12065550123"),
        ] {
            assert_eq!(phone(raw).as_str(), stored, "{raw:?}");
        }
    }

    #[test]
    fn phone_short_number_is_stored_as_given() {
        let p = phone("  555-0123 ");
        assert_eq!(p.as_str(), "555-0123");
        assert_eq!(p.digits(), "5550123");
        assert_eq!(p.last10(), None);
    }

    #[test]
    fn phone_short_number_with_plus_is_stored_as_given() {
        let p = phone(" +44 123 ");
        assert_eq!(p.as_str(), "+44 123");
        assert_eq!(p.last10(), None);
    }

    #[test]
    fn phone_with_plus_keeps_exactly_its_digits() {
        // Ten digits after `+` are not prefixed with the default code.
        assert_eq!(phone("+2065550123").as_str(), "+2065550123");
    }

    #[test]
    fn phone_default_country_code_applies_to_ten_digits_only() {
        let uk = |raw| Phone::parse(raw, "44").expect("valid phone");
        assert_eq!(uk("20 7946 0958 1").as_str(), "+20794609581");
        assert_eq!(uk("207 946 0958").as_str(), "+442079460958");
        assert_eq!(uk("44 207 946 0958").as_str(), "+442079460958");
    }

    #[test]
    fn phone_eleven_digits_without_default_code_keep_their_digits() {
        assert_eq!(phone("020 7946 0958").as_str(), "+02079460958");
        assert_eq!(phone("442079460958").as_str(), "+442079460958");
    }

    #[test]
    fn phone_fifteen_digits_is_the_maximum() {
        assert_eq!(phone("+123456789012345").as_str(), "+123456789012345");
        assert_eq!(
            Phone::parse("+1234567890123456", "1"),
            Err(ContactError::PhoneTooLong)
        );
        assert_eq!(
            Phone::parse("1234567890123456", "1"),
            Err(ContactError::PhoneTooLong)
        );
    }

    #[test]
    fn phone_without_digits_is_rejected() {
        for raw in ["", "   ", "+", "()-", " + "] {
            assert_eq!(
                Phone::parse(raw, "1"),
                Err(ContactError::PhoneNoDigits),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn phone_with_other_characters_is_rejected() {
        for (raw, bad) in [
            ("206-555-0123 ext 4", 'e'),
            ("206-555-CALL", 'C'),
            ("call me", 'c'),
            ("206#555", '#'),
            ("++12065550123", '+'),
            ("206+5550123", '+'),
            ("２０６5550123", '２'),
        ] {
            assert_eq!(
                Phone::parse(raw, "1"),
                Err(ContactError::PhoneInvalidCharacter(bad)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn phone_last10() {
        assert_eq!(phone("+12065550123").last10(), Some(*b"2065550123"));
        assert_eq!(phone("+44 20 7946 0958").last10(), Some(*b"2079460958"));
        assert_eq!(
            phone("(206) 555-0123").last10(),
            phone("206.555.0123").last10()
        );
    }

    #[test]
    fn phone_digits_include_country_code() {
        assert_eq!(phone("(206) 555-0123").digits(), "12065550123");
    }

    #[test]
    fn phone_error_messages_name_the_field() {
        assert_eq!(
            ContactError::PhoneNoDigits.to_string(),
            "contact_phone must contain digits"
        );
        assert_eq!(
            ContactError::PhoneTooLong.to_string(),
            "contact_phone has more than 15 digits"
        );
        assert_eq!(
            ContactError::PhoneInvalidCharacter('x').to_string(),
            "contact_phone contains 'x'; only digits, spaces, ( ) - . / and a leading + are allowed"
        );
    }

    // --- Search ---

    fn by_name(q: &str, name: &str) -> bool {
        SearchQuery::new(q).matches(Some(name), None, None)
    }

    fn by_email(q: &str, email: &str) -> bool {
        SearchQuery::new(q).matches(None, Some(email), None)
    }

    fn by_phone(q: &str, phone: &str) -> bool {
        SearchQuery::new(q).matches(None, None, Some(phone))
    }

    #[test]
    fn search_name_is_case_insensitive_substring() {
        assert!(by_name("ali", "Alice"));
        assert!(by_name("  LIC ", "Alice"));
        assert!(by_name("élo", "ÉLODIE"));
        assert!(!by_name("bob", "Alice"));
    }

    #[test]
    fn search_email_is_case_insensitive_substring() {
        assert!(by_email("EXAMPLE.com", "alice@example.com"));
        assert!(!by_email("example.org", "alice@example.com"));
    }

    #[test]
    fn search_phone_ignores_formatting() {
        assert!(by_phone("555-01", "+12065550123"));
        assert!(by_phone("(206) 555", "+12065550123"));
        assert!(by_phone("206", "(206) 555-0123"));
        assert!(by_phone("+1 206", "+12065550123"));
        assert!(!by_phone("206-999", "+12065550123"));
    }

    #[test]
    fn search_phone_needs_three_digits() {
        assert!(!by_phone("55", "+12065550123"));
        assert!(!by_phone("5-5", "+12065550123"));
    }

    #[test]
    fn search_tries_text_and_phone() {
        let q = SearchQuery::new("alice 206");
        assert!(q.matches(None, None, Some("+12065550123")));
        assert!(q.matches(Some("Alice 206 Corp"), None, None));
        assert!(!q.matches(Some("Alice"), None, Some("+15035550123")));
    }

    #[test]
    fn search_absent_fields_never_match() {
        assert!(!SearchQuery::new("ali").matches(None, None, None));
    }

    #[test]
    fn search_empty_query_matches_everything() {
        assert!(SearchQuery::new("").matches(None, None, None));
        assert!(SearchQuery::new("  ").matches(Some("Alice"), None, None));
    }
}
