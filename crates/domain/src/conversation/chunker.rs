//! Streamed model text → speakable chunks for streaming text-to-speech.
//!
//! The language model's reply arrives a few characters at a time. Waiting for
//! the whole reply before speaking would add seconds of silence, so
//! [`SentenceChunker`] hands each sentence to text-to-speech as soon as it is
//! complete — and lets the first chunk end early, at a clause, so the caller
//! hears something quickly.
//!
//! A chunk ends:
//!
//! - after a sentence: a terminator (`.` `!` `?` `…` `。` `！` `？`, runs like
//!   `?!`, and any closing quotes or brackets right after it) followed by
//!   whitespace — except after an abbreviation (`Mr.`, `e.g.`, `p.m.`, …).
//!   Numbers such as `3.5`, `$1,000.50` or `v2.0` never end a sentence because
//!   their `.` is not followed by whitespace;
//! - after a full-width terminator (`。` `！` `？`) also without whitespace, since
//!   Chinese and Japanese text has none between sentences (otherwise such a
//!   reply would only ever be cut at [`ChunkerConfig::max_chars`]);
//! - in the first chunk of a reply only, after a clause (`,` `;` `:` or ` — `)
//!   followed by whitespace, once the chunk has
//!   [`ChunkerConfig::first_chunk_min_chars`] characters;
//! - at a blank line (a paragraph break);
//! - at the last whitespace before [`ChunkerConfig::max_chars`] characters, or
//!   right there inside a word longer than that.
//!
//! A boundary is decided only once the character after it has arrived, so how
//! the text is split into deltas never changes the chunks. Markdown that would
//! be read aloud is removed: `*`, backticks, `_` used for emphasis (an
//! underscore between two letters or digits, as in `john_doe`, stays), `#`
//! heading marks and `-` bullet markers at the start of a line. Whitespace runs
//! become one space, chunks are trimmed, and text without a letter or digit
//! (`...`, `—`, an emoji) is never returned on its own: it is dropped.

use serde::{Deserialize, Serialize};

/// How [`SentenceChunker`] sizes chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkerConfig {
    /// The first chunk of a reply may end at a clause (`,` `;` `:` ` — `) once
    /// it has at least this many characters (default 20): long enough to sound
    /// natural, short enough to start speaking early.
    pub first_chunk_min_chars: usize,
    /// No chunk is longer than this many characters (default 250; values below
    /// 1 count as 1).
    pub max_chars: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            first_chunk_min_chars: 20,
            max_chars: 250,
        }
    }
}

/// Splits one reply, streamed as text deltas, into speakable chunks.
///
/// Feed deltas to [`push`](Self::push) and send every chunk it returns to
/// text-to-speech; at the end of the stream [`finish`](Self::finish) returns
/// the rest. See the [module docs](self) for where chunks end.
///
/// ```
/// use iace_domain::conversation::chunker::{ChunkerConfig, SentenceChunker};
///
/// let mut chunker = SentenceChunker::new(ChunkerConfig::default());
/// assert!(chunker.push("Sure, Dr. **Lee** can see you at 3.30 today.").is_empty());
/// assert_eq!(chunker.push(" Shall I"), ["Sure, Dr. Lee can see you at 3.30 today."]);
/// assert_eq!(chunker.pending(), " Shall I");
/// assert!(chunker.push(" book it?").is_empty());
/// assert_eq!(chunker.finish().as_deref(), Some("Shall I book it?"));
/// ```
#[derive(Debug, Clone)]
pub struct SentenceChunker {
    config: ChunkerConfig,
    /// Text pushed and neither returned in a chunk nor discarded.
    raw: String,
    /// Offset of `raw` in everything pushed since the reply began, in bytes.
    raw_start: usize,
    markdown: MarkdownFilter,
    /// The chunk being built: cleaned characters with single spaces, no
    /// leading or trailing space, each with the offset of its source text.
    chunk: Vec<(char, usize)>,
    /// Whitespace seen after `chunk`, not yet part of it.
    gap: Option<Gap>,
    /// Whether this reply has produced a chunk yet.
    returned_any: bool,
}

/// A whitespace run after the chunk being built.
#[derive(Debug, Clone, Copy)]
struct Gap {
    /// Offset of its first character.
    offset: usize,
    /// Newlines in it so far (two make a paragraph break).
    newlines: usize,
}

impl SentenceChunker {
    /// A chunker for one reply at a time.
    #[must_use]
    pub fn new(config: ChunkerConfig) -> Self {
        Self {
            config,
            raw: String::new(),
            raw_start: 0,
            markdown: MarkdownFilter::new(),
            chunk: Vec::new(),
            gap: None,
            returned_any: false,
        }
    }

    /// Adds streamed text; returns the chunks it completed, in order.
    ///
    /// The result is the same however the reply is split into deltas.
    #[must_use = "completed chunks must be sent to text-to-speech"]
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        let base = self.raw_start + self.raw.len();
        self.raw.push_str(delta);
        let mut chunks = Vec::new();
        let mut cleaned = Vec::new();
        for (index, c) in delta.char_indices() {
            self.markdown.feed(c, base + index, &mut cleaned);
            for (c, offset) in cleaned.drain(..) {
                let done = if c.is_whitespace() {
                    self.on_whitespace(c, offset)
                } else {
                    self.on_visible(c, offset)
                };
                chunks.extend(done);
            }
        }
        chunks
    }

    /// The end of the stream: the rest, if any speakable text remains.
    ///
    /// The chunker is then ready for the next reply (whose first chunk may end
    /// at a clause again).
    #[must_use = "the rest must be sent to text-to-speech"]
    pub fn finish(&mut self) -> Option<String> {
        // Marks the markdown filter still holds back are all followed by the
        // end of the text, which makes each of them markdown: nothing more
        // reaches the chunk.
        let end = self.raw_start + self.raw.len();
        let rest = self.take_chunk(end);
        *self = Self::new(self.config);
        rest
    }

    /// Everything pushed but not yet returned (for barge-in bookkeeping): the
    /// raw text, markdown included, after the last returned chunk. Whitespace,
    /// markdown and punctuation already discarded before that point are not in
    /// it.
    #[must_use]
    pub fn pending(&self) -> &str {
        &self.raw
    }

    fn max_chars(&self) -> usize {
        self.config.max_chars.max(1)
    }

    fn on_whitespace(&mut self, c: char, offset: usize) -> Option<String> {
        let newline = usize::from(c == '\n');
        if let Some(gap) = &mut self.gap {
            gap.newlines += newline;
            if gap.newlines == 2 {
                let at = gap.offset;
                return self.take_chunk(at);
            }
            return None;
        }
        if self.chunk.is_empty() {
            return None; // nothing to separate yet
        }
        self.gap = Some(Gap {
            offset,
            newlines: newline,
        });
        let word = self.last_word();
        let clause = !self.returned_any
            && self.chunk.len() >= self.config.first_chunk_min_chars
            && ends_clause(&word, self.chunk.len());
        if ends_sentence(&word) || clause || self.chunk.len() >= self.max_chars() {
            return self.take_chunk(offset);
        }
        None
    }

    fn on_visible(&mut self, c: char, offset: usize) -> Option<String> {
        let max = self.max_chars();
        let mut done = None;
        if let Some(gap) = self.gap.take() {
            if self.chunk.len() + 2 > max {
                done = self.take_chunk(gap.offset);
            } else {
                self.chunk.push((' ', gap.offset));
            }
        } else if ends_full_width_sentence(&self.last_word()) && !is_closer(c) && !is_terminator(c)
        {
            done = self.take_chunk(offset);
        } else if self.chunk.len() + 1 > max {
            match self.chunk.iter().rposition(|&(ch, _)| ch == ' ') {
                Some(space) => {
                    let (_, at) = self.chunk[space];
                    let rest: Vec<_> = self.chunk.drain(space..).skip(1).collect();
                    done = self.take_chunk(at);
                    self.chunk = rest;
                }
                // One word as long as a chunk may be: cut it here.
                None => done = self.take_chunk(offset),
            }
        }
        self.chunk.push((c, offset));
        done
    }

    /// The characters after the last space of the chunk being built.
    fn last_word(&self) -> Vec<char> {
        let start = self
            .chunk
            .iter()
            .rposition(|&(c, _)| c == ' ')
            .map_or(0, |space| space + 1);
        self.chunk[start..].iter().map(|&(c, _)| c).collect()
    }

    /// Ends the chunk being built, whose source text ends at `raw_end`; returns
    /// it if it is speakable.
    fn take_chunk(&mut self, raw_end: usize) -> Option<String> {
        let text: String = self.chunk.drain(..).map(|(c, _)| c).collect();
        self.gap = None;
        let consumed = raw_end.saturating_sub(self.raw_start);
        // Always a boundary (offsets are those of pushed characters); checked
        // so a mistake could only cost bookkeeping, never a panic.
        if self.raw.is_char_boundary(consumed) {
            self.raw.drain(..consumed);
            self.raw_start += consumed;
        }
        let text = text.trim();
        if text.chars().any(char::is_alphanumeric) {
            self.returned_any = true;
            Some(text.to_owned())
        } else {
            None
        }
    }
}

/// Abbreviations whose final `.` does not end a sentence (compared lowercase).
const ABBREVIATIONS: [&str; 11] = [
    "mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "etc.", "vs.", "a.m.", "p.m.",
];

const fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

const fn is_full_width_terminator(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

const fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | ')' | ']' | '}' | '»' | '」' | '』' | '）' | '】' | '》'
    )
}

const fn is_opener(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '“' | '‘' | '(' | '[' | '{' | '«' | '「' | '『' | '（' | '【' | '《'
    )
}

/// `word` without the closing quotes and brackets at its end.
fn without_closers(word: &[char]) -> &[char] {
    let end = word
        .iter()
        .rposition(|&c| !is_closer(c))
        .map_or(0, |last| last + 1);
    &word[..end]
}

/// Whether the last word ends a sentence (a terminator run, then closers,
/// and not an abbreviation).
fn ends_sentence(word: &[char]) -> bool {
    let word = without_closers(word);
    let body_end = word
        .iter()
        .rposition(|&c| !is_terminator(c))
        .map_or(0, |last| last + 1);
    match &word[body_end..] {
        [] => false,
        ['.'] => !is_abbreviation(word),
        _ => true,
    }
}

fn is_abbreviation(word: &[char]) -> bool {
    let start = word
        .iter()
        .position(|&c| !is_opener(c))
        .unwrap_or(word.len());
    let word: String = word[start..]
        .iter()
        .flat_map(|c| c.to_lowercase())
        .collect();
    ABBREVIATIONS.contains(&word.as_str())
}

/// Whether the last word ends a clause: `,` `;` `:` (then closers), or a
/// free-standing `—` (not the chunk's only character).
fn ends_clause(word: &[char], chunk_chars: usize) -> bool {
    match without_closers(word) {
        ['—'] => chunk_chars > 1,
        [.., ',' | ';' | ':'] => true,
        _ => false,
    }
}

fn ends_full_width_sentence(word: &[char]) -> bool {
    without_closers(word)
        .last()
        .is_some_and(|&c| is_full_width_terminator(c))
}

/// Removes markdown from streamed text, one character at a time, holding a
/// mark back while the character after it decides what it is.
#[derive(Debug, Clone)]
struct MarkdownFilter {
    /// Only whitespace and removed marks so far on this line.
    line_start: bool,
    /// The previous source character.
    prev: Option<char>,
    held: Held,
}

/// A mark waiting for the next character.
#[derive(Debug, Clone, Copy)]
enum Held {
    Nothing,
    /// `_`: kept only between two letters or digits.
    Underscore {
        offset: usize,
        after_alphanumeric: bool,
    },
    /// `#`s at a line start: a heading mark if whitespace follows.
    Hashes {
        offset: usize,
        count: usize,
    },
    /// `-` at a line start: a bullet if whitespace follows.
    Dash {
        offset: usize,
    },
}

impl MarkdownFilter {
    const fn new() -> Self {
        Self {
            line_start: true,
            prev: None,
            held: Held::Nothing,
        }
    }

    /// Takes the source character at `offset`; appends what survives (with
    /// source offsets) to `out`.
    fn feed(&mut self, c: char, offset: usize, out: &mut Vec<(char, usize)>) {
        if c == '#'
            && let Held::Hashes { count, .. } = &mut self.held
        {
            *count += 1;
            self.prev = Some(c);
            return;
        }
        self.resolve(c, out);
        match c {
            '`' | '*' => {}
            '_' => {
                self.held = Held::Underscore {
                    offset,
                    after_alphanumeric: self.prev.is_some_and(char::is_alphanumeric),
                };
            }
            '#' if self.line_start => self.held = Held::Hashes { offset, count: 1 },
            '-' if self.line_start => self.held = Held::Dash { offset },
            c => self.keep(c, offset, out),
        }
        self.prev = Some(c);
    }

    /// Decides the held mark now that `next` follows it. (At the end of the
    /// text every held mark is markdown, so there is nothing to resolve.)
    fn resolve(&mut self, next: char, out: &mut Vec<(char, usize)>) {
        match std::mem::replace(&mut self.held, Held::Nothing) {
            Held::Nothing => {}
            Held::Underscore {
                offset,
                after_alphanumeric,
            } => {
                if after_alphanumeric && next.is_alphanumeric() {
                    self.keep('_', offset, out);
                }
            }
            Held::Hashes { offset, count } => {
                if !next.is_whitespace() {
                    for i in 0..count {
                        self.keep('#', offset + i, out); // `#` is one byte
                    }
                }
            }
            Held::Dash { offset } => {
                if !next.is_whitespace() {
                    self.keep('-', offset, out);
                }
            }
        }
    }

    fn keep(&mut self, c: char, offset: usize, out: &mut Vec<(char, usize)>) {
        if c == '\n' {
            self.line_start = true;
        } else if !c.is_whitespace() {
            self.line_start = false;
        }
        out.push((c, offset));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(first_chunk_min_chars: usize, max_chars: usize) -> ChunkerConfig {
        ChunkerConfig {
            first_chunk_min_chars,
            max_chars,
        }
    }

    /// Everything a chunker returns for `deltas`, `finish` included.
    fn run_deltas(config: ChunkerConfig, deltas: &[&str]) -> Vec<String> {
        let mut chunker = SentenceChunker::new(config);
        let mut chunks = Vec::new();
        for delta in deltas {
            chunks.extend(chunker.push(delta));
        }
        chunks.extend(chunker.finish());
        chunks
    }

    fn run(config: ChunkerConfig, text: &str) -> Vec<String> {
        run_deltas(config, &[text])
    }

    fn chunks(text: &str) -> Vec<String> {
        run(ChunkerConfig::default(), text)
    }

    /// The markdown rules of the module docs, applied to a whole text at once:
    /// an independent statement of what the streaming filter must do.
    fn strip_markdown(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        let mut line_start = true;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match c {
                '`' | '*' => {}
                '_' => {
                    let prev = i.checked_sub(1).map(|p| chars[p]);
                    if prev.is_some_and(char::is_alphanumeric)
                        && next.is_some_and(char::is_alphanumeric)
                    {
                        out.push('_');
                        line_start = false;
                    }
                }
                '#' if line_start => {
                    let end = (i..chars.len())
                        .find(|&j| chars[j] != '#')
                        .unwrap_or(chars.len());
                    if chars.get(end).is_some_and(|c| !c.is_whitespace()) {
                        out.extend(&chars[i..end]);
                        line_start = false;
                    }
                    i = end;
                    continue;
                }
                '-' if line_start && next.is_none_or(char::is_whitespace) => {}
                '\n' => {
                    out.push('\n');
                    line_start = true;
                }
                c => {
                    out.push(c);
                    line_start &= c.is_whitespace();
                }
            }
            i += 1;
        }
        out
    }

    fn collapse_whitespace(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn default_config() {
        assert_eq!(ChunkerConfig::default(), config(20, 250));
        let partial: ChunkerConfig = serde_json::from_str(r#"{"max_chars":100}"#).expect("de");
        assert_eq!(partial, config(20, 100));
    }

    #[test]
    fn splits_after_sentence_terminators() {
        assert_eq!(
            chunks("Hello there. How are you? I'm fine! Really… Great。 Bye！ OK？ Done"),
            [
                "Hello there.",
                "How are you?",
                "I'm fine!",
                "Really…",
                "Great。",
                "Bye！",
                "OK？",
                "Done"
            ]
        );
    }

    #[test]
    fn keeps_terminator_runs_and_closing_quotes_and_brackets() {
        assert_eq!(
            chunks("Really?! Yes... He said \"go.\" Then (quietly.) Fine?\" Ok"),
            [
                "Really?!",
                "Yes...",
                "He said \"go.\"",
                "Then (quietly.)",
                "Fine?\"",
                "Ok"
            ]
        );
    }

    #[test]
    fn decides_only_once_the_next_character_is_known() {
        let mut chunker = SentenceChunker::new(ChunkerConfig::default());
        assert!(chunker.push("It costs 3.").is_empty(), "3.5 may follow");
        assert!(chunker.push("5 dollars.").is_empty(), "a quote may follow");
        assert!(chunker.push("\"").is_empty());
        assert_eq!(chunker.push(" Ok"), ["It costs 3.5 dollars.\""]);
        assert_eq!(chunker.finish().as_deref(), Some("Ok"));
    }

    #[test]
    fn never_splits_after_abbreviations() {
        assert_eq!(
            run(
                config(usize::MAX, 250),
                "Mr. and MRS. Smith met Ms. Jones and Dr. Who on St. Mark's, e.g. at 9 a.m. or \
                 5 P.M. (i.e. late), apples vs. pears etc. and more. Done."
            ),
            [
                "Mr. and MRS. Smith met Ms. Jones and Dr. Who on St. Mark's, e.g. at 9 a.m. or \
                 5 P.M. (i.e. late), apples vs. pears etc. and more.",
                "Done."
            ]
        );
        // Only a single period marks an abbreviation.
        assert_eq!(chunks("Ask the Dr.! Now."), ["Ask the Dr.!", "Now."]);
        assert_eq!(
            chunks("A \"Dr. Who\" fan. Yes."),
            ["A \"Dr. Who\" fan.", "Yes."]
        );
    }

    #[test]
    fn never_splits_inside_numbers() {
        assert_eq!(
            run(
                config(usize::MAX, 250),
                "It is 3.5 km, $1,000.50 total, on v2.0 today. Ok."
            ),
            ["It is 3.5 km, $1,000.50 total, on v2.0 today.", "Ok."]
        );
    }

    #[test]
    fn full_width_terminators_need_no_whitespace() {
        assert_eq!(
            chunks("你好。我是小王！你呢？「好。」他说。"),
            ["你好。", "我是小王！", "你呢？", "「好。」", "他说。"]
        );
        // ASCII terminators still need whitespace.
        assert_eq!(chunks("OK.Then"), ["OK.Then"]);
    }

    #[test]
    fn the_first_chunk_may_end_at_a_clause() {
        let text = "Well, I checked your account carefully, and it looks fine, really, so relax.";
        assert_eq!(
            chunks(text),
            [
                "Well, I checked your account carefully,",
                "and it looks fine, really, so relax."
            ]
        );
        for (mark, first) in [
            (";", "I checked your account;"),
            (":", "I checked your account:"),
            (" —", "I checked your account —"),
        ] {
            let text = format!("I checked your account{mark} it looks fine, really.");
            let got = chunks(&text);
            assert_eq!(got[0], first, "{text}");
            assert_eq!(got.len(), 2, "{got:?}");
        }
    }

    #[test]
    fn the_first_clause_needs_first_chunk_min_chars() {
        // "Nineteen chars here," is 20 characters.
        let text = "Nineteen chars here, then the rest.";
        assert_eq!(
            run(config(20, 250), text),
            ["Nineteen chars here,", "then the rest."]
        );
        assert_eq!(run(config(21, 250), text), [text]);
        assert_eq!(
            run(config(0, 250), "Hi, you. Ok, then."),
            ["Hi,", "you.", "Ok, then."]
        );
        // A dash needs spaces around it to mark a clause.
        assert_eq!(
            run(config(0, 250), "A well—known thing—ok. B"),
            ["A well—known thing—ok.", "B"]
        );
        assert_eq!(run(config(0, 250), "— and so on"), ["— and so on"]);
    }

    #[test]
    fn only_the_first_chunk_ends_at_a_clause() {
        let text = "Yes. Well, I checked your account carefully, and it looks fine.";
        assert_eq!(
            chunks(text),
            [
                "Yes.",
                "Well, I checked your account carefully, and it looks fine."
            ]
        );
        // A fragment without words is not a chunk, so the next one is still first.
        assert_eq!(
            chunks("... Well, I checked your account carefully, and it looks fine."),
            [
                "Well, I checked your account carefully,",
                "and it looks fine."
            ]
        );
        // Each reply starts over.
        let mut chunker = SentenceChunker::new(ChunkerConfig::default());
        for _ in 0..2 {
            assert_eq!(
                chunker.push("I checked your account for you, and yes. "),
                ["I checked your account for you,", "and yes."]
            );
            assert_eq!(chunker.finish(), None);
        }
    }

    #[test]
    fn long_chunks_are_cut_at_the_last_whitespace() {
        let config = config(20, 20);
        assert_eq!(
            run(config, "one two three four five six seven eight"),
            ["one two three four", "five six seven eight"]
        );
        // Exactly max_chars, then whitespace: cut right there.
        assert_eq!(
            run(config, "aaaa bbbb cccc ddddd eeee"),
            ["aaaa bbbb cccc ddddd", "eeee"]
        );
        // Whitespace just before the character that would exceed the limit.
        assert_eq!(
            run(config, "aaaa bbbb cccc dddd eeee"),
            ["aaaa bbbb cccc dddd", "eeee"]
        );
    }

    #[test]
    fn a_word_longer_than_max_chars_is_cut_hard() {
        let word = "x".repeat(25);
        assert_eq!(
            run(config(20, 10), &format!("ab {word} cd")),
            ["ab", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxx cd"]
        );
        assert_eq!(run(config(20, 0), "abc"), ["a", "b", "c"], "0 counts as 1");
        // Characters, not bytes.
        assert_eq!(run(config(20, 2), "日本語"), ["日本", "語"]);
    }

    #[test]
    fn trims_and_drops_chunks_without_words() {
        assert_eq!(chunks("  \n Hi.   \n  "), ["Hi."]);
        assert_eq!(chunks("Hi. ... !? Bye."), ["Hi.", "Bye."]);
        assert_eq!(chunks("Hi. — Bye."), ["Hi.", "— Bye."]);
        assert_eq!(chunks("Hi.\n\n---\n\nBye."), ["Hi.", "Bye."]);
        assert_eq!(chunks("🎉"), Vec::<String>::new());
        assert_eq!(chunks(""), Vec::<String>::new());
        assert_eq!(chunks("Hi. 🎉"), ["Hi."]);
    }

    #[test]
    fn newlines_are_whitespace_and_blank_lines_are_boundaries() {
        assert_eq!(
            chunks("First line\nsecond line\r\n\r\nNew paragraph\n  \nLast"),
            ["First line second line", "New paragraph", "Last"]
        );
    }

    #[test]
    fn removes_markdown() {
        assert_eq!(
            chunks(
                "# Your **order**\n\n## Details:\n- *Two* items\n* `ABC-1`\n  - __fast__ _shipping_ \
                 for john_doe\n#1 - best -5 seller\n###\n"
            ),
            [
                "Your order",
                "Details: Two items ABC-1 fast shipping for john_doe #1 - best -5 seller"
            ]
        );
        assert_eq!(chunks("snake_case_name and a_"), ["snake_case_name and a"]);
        assert_eq!(chunks("-"), Vec::<String>::new());
    }

    #[test]
    fn pending_is_the_raw_text_not_yet_returned() {
        let mut chunker = SentenceChunker::new(ChunkerConfig::default());
        assert_eq!(chunker.pending(), "");
        assert!(chunker.push("**Hi** there").is_empty());
        assert_eq!(chunker.pending(), "**Hi** there");
        assert_eq!(chunker.push(". How are"), ["Hi there."]);
        assert_eq!(chunker.pending(), " How are");
        assert!(chunker.push(" you").is_empty());
        assert_eq!(chunker.pending(), " How are you");
        assert_eq!(chunker.finish().as_deref(), Some("How are you"));
        assert_eq!(chunker.pending(), "");

        // A cut at max_chars keeps the unfinished word pending.
        let mut chunker = SentenceChunker::new(config(20, 10));
        assert_eq!(chunker.push("ééé ççç ööö"), ["ééé ççç"]);
        assert_eq!(chunker.pending(), " ööö");
    }

    #[test]
    fn finish_returns_none_without_speakable_text() {
        let mut chunker = SentenceChunker::new(ChunkerConfig::default());
        assert_eq!(chunker.push("Done. "), ["Done."]);
        assert_eq!(chunker.finish(), None);
        assert_eq!(chunker.finish(), None);
        assert!(chunker.push("**").is_empty());
        assert_eq!(chunker.finish(), None);
    }

    /// Realistic replies: sentences of words (some with markdown, abbreviations
    /// or numbers), clause marks, terminators, line breaks and bullets.
    fn reply() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            4 => "[a-zA-Z]{1,10}",
            1 => "[a-z]{1,5}_[a-z]{1,5}",
            1 => "[0-9]{1,3}(\\.[0-9]{1,2})?",
            1 => Just("$1,000.50".to_owned()),
            1 => Just("v2.0".to_owned()),
            1 => prop::sample::select(ABBREVIATIONS.to_vec()).prop_map(str::to_owned),
            1 => "[a-z]{1,8}".prop_map(|w| format!("**{w}**")),
            1 => "[a-z]{1,8}".prop_map(|w| format!("_{w}_")),
            1 => "[a-z]{1,8}".prop_map(|w| format!("`{w}`")),
            1 => "[a-z]{1,8}".prop_map(|w| format!("({w})")),
        ];
        let separator = prop::sample::select(vec![" ", " ", " ", ", ", "; ", ": ", " — ", "\n"]);
        let end = prop::sample::select(vec![
            ".", ".", "!", "?", "?!", "…", "...", ".\"", "!)", "", ",",
        ]);
        let sentence = (
            word.clone(),
            prop::collection::vec((separator, word), 0..12),
            end,
        )
            .prop_map(|(first, rest, end)| {
                let mut s = first;
                for (separator, word) in rest {
                    s.push_str(separator);
                    s.push_str(&word);
                }
                s.push_str(end);
                s
            });
        let joiner = prop::sample::select(vec![" ", " ", "  ", "\n", "\n\n", "\n- ", "\n\n# "]);
        prop::collection::vec((joiner, sentence), 1..8).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(joiner, sentence)| format!("{joiner}{sentence}"))
                .collect()
        })
    }

    /// Text with everything the chunker treats specially, and anything else.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,300}",
            "[a-c .!?…。」\"),;:—*_#`\n -]{0,300}",
            "([a-zé日 ]{0,30}[.!?。,]?[ \n]{0,3}){0,20}",
            reply(),
        ]
    }

    /// Splits `text` at the given fractions of its length (on char boundaries).
    fn split_at_fractions<'a>(text: &'a str, cuts: &[f64]) -> Vec<&'a str> {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|f| boundaries[((boundaries.len() - 1) as f64 * f) as usize])
            .collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for point in points.into_iter().chain([text.len()]) {
            pieces.push(&text[start..point]);
            start = point;
        }
        pieces
    }

    /// Checks that the chunks are `expected` in order, each followed by its
    /// separating space, except text without letters or digits, which may be
    /// dropped, and cuts inside a word (hard cuts and full-width sentence
    /// ends), which have no space to drop.
    fn assert_covers(expected: &str, chunks: &[String]) -> Result<(), TestCaseError> {
        let mut rest = expected;
        for chunk in chunks {
            let Some(at) = rest.find(chunk.as_str()) else {
                return Err(TestCaseError::fail(format!(
                    "{chunk:?} not found in {rest:?}"
                )));
            };
            let skipped = &rest[..at];
            prop_assert!(
                !skipped.chars().any(char::is_alphanumeric),
                "{skipped:?} was lost before {chunk:?}"
            );
            rest = &rest[at + chunk.len()..];
        }
        prop_assert!(
            !rest.chars().any(char::is_alphanumeric),
            "{rest:?} was lost at the end"
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn chunks_do_not_depend_on_how_the_text_is_split(
            text in any_text(),
            cuts in prop::collection::vec(0.0f64..=1.0, 0..12),
            first in 0usize..40,
            max in 1usize..300,
        ) {
            let config = config(first, max);
            let whole = run(config, &text);
            let pieces = split_at_fractions(&text, &cuts);
            prop_assert_eq!(&run_deltas(config, &pieces), &whole);
            let chars: Vec<String> = text.chars().map(String::from).collect();
            let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
            prop_assert_eq!(&run_deltas(config, &chars), &whole);
        }

        #[test]
        fn chunks_joined_are_the_reply_without_markdown(
            text in reply(),
            first in 0usize..40,
            max in 20usize..300,
        ) {
            let chunks = run(config(first, max), &text);
            prop_assert_eq!(chunks.join(" "), collapse_whitespace(&strip_markdown(&text)));
        }

        #[test]
        fn chunks_keep_every_word_of_any_text(
            text in any_text(),
            first in 0usize..40,
            max in 1usize..300,
        ) {
            let chunks = run(config(first, max), &text);
            assert_covers(&collapse_whitespace(&strip_markdown(&text)), &chunks)?;
        }

        #[test]
        fn chunks_are_trimmed_speakable_and_at_most_max_chars(
            text in any_text(),
            first in 0usize..40,
            max in 0usize..300,
        ) {
            for chunk in run(config(first, max), &text) {
                prop_assert!(chunk.chars().count() <= max.max(1), "{chunk:?}");
                prop_assert_eq!(chunk.trim(), chunk.as_str());
                prop_assert!(chunk.chars().any(char::is_alphanumeric), "{chunk:?}");
            }
        }

        #[test]
        fn never_panics_and_pending_is_a_suffix(
            deltas in prop::collection::vec("\\PC{0,20}|.{0,5}", 0..20),
            first in 0usize..400,
            max in 0usize..400,
        ) {
            let mut chunker = SentenceChunker::new(config(first, max));
            let mut pushed = String::new();
            for delta in &deltas {
                let _ = chunker.push(delta);
                pushed.push_str(delta);
                prop_assert!(pushed.ends_with(chunker.pending()));
            }
            let _ = chunker.finish();
            prop_assert_eq!(chunker.pending(), "");
        }
    }
}
