//! Personal data out of logs: phone numbers and e-mail addresses are masked
//! in every line written, whatever formatted them — a value logged by
//! mistake, a provider's error body, a request path.
//!
//! - A phone number — `+` (or a URL-encoded `%2B`) then 8 to 15 digits
//!   (E.164), or a bare run of 10 to 15 digits standing alone (after a
//!   space, a quote, `=`, `(` or `/`) — keeps its first four and last four
//!   digits: `+14155550123` → `+1415***0123` (the form `PhoneNumber`
//!   displays). Numbers written with separators (`+1 415-555-0123`) are not
//!   recognised.
//! - An e-mail address keeps the first letter of its local part and its
//!   domain: `jane.doe@example.com` → `j***@example.com`.
//!
//! Shorter digit runs (ports, counts, ids' digits inside words), UUIDs,
//! fractions and JSON numbers are left alone, so a JSON line stays JSON.

use std::borrow::Cow;
use std::io;

use tracing_subscriber::fmt::MakeWriter;

/// `text` with phone numbers and e-mail addresses masked (borrowed when it
/// holds none).
#[must_use]
pub fn mask_pii(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b.is_ascii_digit() || b == b'@') {
        return Cow::Borrowed(text);
    }
    let masked = mask_emails(&mask_phones(text));
    if masked == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(masked)
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where a bare digit run may start: after these, or at the start, or
/// right after an ANSI colour code (`\x1b[…m`) in terminal output. Not after
/// `.`, `-`, `:`, `,` or `[`: there a run is a fraction, part of a UUID or a
/// JSON number, and masking it would corrupt the line.
fn bare_start(bytes: &[u8], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    match bytes[i - 1] {
        b' ' | b'\t' | b'"' | b'\'' | b'=' | b'(' | b'/' => true,
        b'm' => {
            // An ANSI escape: ESC [ digits/semicolons m.
            let mut j = i - 1;
            while j > 0 && (bytes[j - 1].is_ascii_digit() || bytes[j - 1] == b';') {
                j -= 1;
            }
            j >= 2 && bytes[j - 1] == b'[' && bytes[j - 2] == 0x1b
        }
        _ => false,
    }
}

/// Whether a run ending at `end` ends there: not inside a word, a decimal
/// number (`123.45`) or a hyphenated token (`…-1234-abcd`).
fn run_ends(bytes: &[u8], end: usize) -> bool {
    match bytes.get(end) {
        None => true,
        Some(&b) if is_word(b) => false,
        Some(b'.' | b'-') => !bytes.get(end + 1).is_some_and(u8::is_ascii_hexdigit),
        Some(_) => true,
    }
}

fn mask_phones(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        // `+`, or `%2B` (a URL-encoded plus), starts a number wherever it
        // stands; bare digits must stand alone.
        let prefix = if bytes[i] == b'+' {
            1
        } else if bytes[i..].len() >= 3 && bytes[i..i + 3].eq_ignore_ascii_case(b"%2B") {
            3
        } else {
            0
        };
        let start = i + prefix;
        if (prefix > 0 || bare_start(bytes, i))
            && start < bytes.len()
            && bytes[start].is_ascii_digit()
        {
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            let digits = end - start;
            let (min, max) = if prefix > 0 { (8, 15) } else { (10, 15) };
            if run_ends(bytes, end) && (min..=max).contains(&digits) {
                out.push_str(&text[copied..start]);
                out.push_str(&text[start..start + 4]);
                out.push_str("***");
                out.push_str(&text[end - 4..end]);
                copied = end;
            }
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-".contains(&b)
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".-".contains(&b)
}

fn mask_emails(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(offset) = text[search..].find('@') {
        let at = search + offset;
        let mut start = at;
        while start > copied && is_local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain(bytes[end]) {
            end += 1;
        }
        // Trailing dots end a sentence, not the domain.
        while end > at + 1 && bytes[end - 1] == b'.' {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let looks_real = start < at
            && domain.contains('.')
            && !domain.starts_with('.')
            && bytes[start].is_ascii_alphanumeric();
        if looks_real {
            out.push_str(&text[copied..start]);
            out.push_str(&text[start..=start]);
            out.push_str("***@");
            out.push_str(domain);
            copied = end;
        }
        search = end.max(at + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// A [`MakeWriter`] whose writers mask every line before it reaches `inner`
/// (the formatter writes each event in one `write`).
#[derive(Debug, Clone)]
pub struct MaskingWriter<M> {
    inner: M,
}

impl<M> MaskingWriter<M> {
    /// Masks what is written to `inner`'s writers.
    pub fn new(inner: M) -> Self {
        Self { inner }
    }
}

impl<'a, M> MakeWriter<'a> for MaskingWriter<M>
where
    M: MakeWriter<'a>,
{
    type Writer = Masking<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Masking {
            inner: self.inner.make_writer(),
        }
    }
}

/// One masking writer (see [`MaskingWriter`]).
#[derive(Debug)]
pub struct Masking<W> {
    inner: W,
}

impl<W: io::Write> io::Write for Masking<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => {
                self.inner.write_all(mask_pii(text).as_bytes())?;
                Ok(buf.len())
            }
            Err(_) => self.inner.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn phone_numbers_are_masked_as_the_domain_displays_them() {
        assert_eq!(
            mask_pii("calling +14155550123 now"),
            "calling +1415***0123 now"
        );
        assert_eq!(mask_pii("to=+442079460958,"), "to=+4420***0958,");
        assert_eq!(
            mask_pii("\"from\":\"14155550123\""),
            "\"from\":\"1415***0123\""
        );
        assert_eq!(
            mask_pii("/v1/customers/by-phone/+14155550123"),
            "/v1/customers/by-phone/+1415***0123"
        );
    }

    #[test]
    fn e_mail_addresses_keep_one_letter_and_the_domain() {
        assert_eq!(
            mask_pii("owner jane.doe@example.com signed in."),
            "owner j***@example.com signed in."
        );
        assert_eq!(
            mask_pii("<a+b@mail.example.org>"),
            "<a***@mail.example.org>"
        );
    }

    #[test]
    fn url_encoded_and_coloured_numbers_are_masked_too() {
        assert_eq!(
            mask_pii("GET /v1/customers/lookup?phone=%2B14155550123"),
            "GET /v1/customers/lookup?phone=%2B1415***0123"
        );
        assert_eq!(
            mask_pii("\u{1b}[3mfrom\u{1b}[0m\u{1b}[2m=\u{1b}[0m14155550123"),
            "\u{1b}[3mfrom\u{1b}[0m\u{1b}[2m=\u{1b}[0m1415***0123"
        );
    }

    #[test]
    fn ordinary_numbers_and_ids_are_left_alone() {
        for text in [
            "listening on 127.0.0.1:8080",
            "took 1234 ms, 56789 rows",
            "call 01a217ee-712b-76f1-bcaa-9439af21b1a4",
            "v3:7dcaf80222c34f5ea134ffbab1bb7137",
            "status 503 after 3 attempts",
            "user@localhost",
            "an @mention",
            "timestamp 2026-11-26T12:57:12.294049Z",
            "call 01a217ee-712b-76f1-bcaa-943912345678",
            "{\"duration_ms\":33.248084999999996,\"epoch_ms\":1764161832000}",
            "[1764161832000,1764161833000]",
        ] {
            assert_eq!(mask_pii(text), text);
        }
    }

    #[test]
    fn the_writer_masks_each_line() {
        let mut out = Vec::new();
        {
            use std::io::Write as _;
            let mut w = Masking { inner: &mut out };
            w.write_all(b"{\"msg\":\"sms to +14155550123 for ann@example.com\"}\n")
                .expect("write");
        }
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "{\"msg\":\"sms to +1415***0123 for a***@example.com\"}\n"
        );
    }

    proptest! {
        #[test]
        fn no_e164_number_survives(prefix in "[a-z =:\"]{0,10}", digits in "[1-9][0-9]{7,14}", suffix in "[ ,.\"}]{0,5}") {
            let text = format!("{prefix}+{digits}{suffix}");
            let masked = mask_pii(&text);
            prop_assert!(!masked.contains(&digits), "{masked}");
            prop_assert!(masked.contains(&digits[digits.len() - 4..]));
        }

        #[test]
        fn uuids_fractions_and_json_numbers_are_untouched(
            id in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9]{12}",
            value in proptest::num::f64::POSITIVE,
            epoch in 1_000_000_000_000u64..10_000_000_000_000u64,
        ) {
            let line = serde_json::json!({"call_id": id, "took": value, "at": epoch}).to_string();
            prop_assert_eq!(mask_pii(&line).into_owned(), line);
        }

        #[test]
        fn masking_twice_changes_nothing_more(text in "[ -~]{0,80}") {
            let once = mask_pii(&text).into_owned();
            prop_assert_eq!(mask_pii(&once).into_owned(), once);
        }
    }
}
