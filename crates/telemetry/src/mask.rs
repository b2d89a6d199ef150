//! Personal data out of logs: phone numbers and e-mail addresses are masked
//! in every line written, whatever formatted them — a value logged by
//! mistake, a provider's error body, a request path.
//!
//! - A phone number — `+` then 8 to 15 digits (E.164), or a bare run of 10 to
//!   15 digits — keeps its first four and last four digits:
//!   `+14155550123` → `+1415***0123` (the form `PhoneNumber` displays).
//! - An e-mail address keeps the first letter of its local part and its
//!   domain: `jane.doe@example.com` → `j***@example.com`.
//!
//! Shorter digit runs (ports, counts, ids' digits inside words) and UUIDs are
//! left alone: a digit run counts only when no letter or digit touches it.

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

fn mask_phones(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let plus = bytes[i] == b'+';
        let start = if plus { i + 1 } else { i };
        // `+` starts a number wherever it stands; bare digits must stand
        // alone.
        let before_ok = plus || i == 0 || !is_word(bytes[i - 1]) && bytes[i - 1] != b'+';
        if before_ok && start < bytes.len() && bytes[start].is_ascii_digit() {
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            let digits = end - start;
            let after_ok = end == bytes.len() || !is_word(bytes[end]);
            let (min, max) = if plus { (8, 15) } else { (10, 15) };
            if after_ok && (min..=max).contains(&digits) {
                out.push_str(&text[copied..i]);
                if plus {
                    out.push('+');
                }
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
        fn masking_twice_changes_nothing_more(text in "[ -~]{0,80}") {
            let once = mask_pii(&text).into_owned();
            prop_assert_eq!(mask_pii(&once).into_owned(), once);
        }
    }
}
