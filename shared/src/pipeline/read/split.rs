//! A streaming splitter of JSON objects written back to back (with or without whitespace or
//! newlines between them), or wrapped in one JSON array.
//!
//! It does not parse: it tracks strings, escapes and nesting depth to find where each
//! top-level object starts and ends, and hands out each fragment with its byte offset in the
//! (decompressed) stream. Parsing is left to the caller, so one broken object costs only
//! itself:
//!
//! - Bytes at the top level that do not start an object (`oops`, `42`) are a
//!   [`PieceKind::Stray`] fragment that runs until the next `{`.
//! - A raw newline inside a string cannot occur in valid JSON: the object is broken there (it
//!   fails to parse), and its fragment runs on to the next `{` (the rest of a value that held
//!   an unescaped newline is part of the same bad fragment, so it gives one quarantine record,
//!   not a second one for the tail); scanning resumes at that `{`.
//! - A `{` where JSON allows no value (after a complete value or a key, e.g. the next event
//!   after an object that lacks its `}`) cuts the open object there and starts a new one. A `{`
//!   after `:`, after `[`, or after `,` inside an array is a nested value wherever it stands,
//!   at the start of a line included: boundaries do not depend on columns, so pretty-printed
//!   events whose nested objects open in column 0 stay whole.
//! - An object still open at the end of the input is a [`PieceKind::Truncated`] tail.
//!
//! Fragments are borrowed from the fed chunk when they lie inside it; only a fragment that
//! spans chunks is copied, into a buffer of at most `max_fragment` bytes. A longer fragment
//! is reported with its first `max_fragment` bytes as [`PieceKind::Oversized`], so memory stays
//! bounded whatever the input.

use memchr::memchr;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

fn splat(b: u8) -> u64 {
    ONES * u64::from(b)
}

/// What a fragment is (the splitter's four; [`super::decode`] adds `Unreadable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    /// Balanced braces: an object, if it parses.
    Object,
    /// Top-level bytes that are not an object.
    Stray,
    /// An object cut off by the end of the input.
    Truncated,
    /// Longer than the splitter's limit: only its beginning is kept.
    Oversized,
    /// The decompressed content is corrupt from here on; the bytes are the decoder's message.
    Unreadable,
}

/// One fragment of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// 0-based ordinal of the fragment in the stream.
    pub index: u64,
    /// Byte offset of its first byte in the stream.
    pub offset: u64,
    /// Its length in the stream (more than `bytes.len()` when oversized).
    pub length: u64,
    /// Its bytes (only the first `max_fragment` when oversized).
    pub bytes: &'a [u8],
    /// [`PieceKind::Oversized`] whatever it would be otherwise, when it is longer than the
    /// splitter's limit.
    pub kind: PieceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Object,
    Stray,
    /// An object broken by a raw newline inside a string, running on to the next `{`.
    Broken,
}

/// Where [`Splitter::scan`] stopped.
enum Stop {
    /// The chunk ends inside the object.
    End,
    /// The object's last `}` (or `]`) is at this index.
    Close(usize),
    /// A raw newline inside a string is at this index.
    Broken(usize),
    /// A `{` where no value can stand, while the object is open, is at this index.
    Restart(usize),
}

/// Bit 7 set in exactly the zero bytes of `v`.
fn zero_bytes_exact(v: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LOW).wrapping_add(LOW)) | v) & HIGH
}

/// Bit 7 set in the bytes of `word` that matter inside an object: `"`, `\\`, newline, `{`,
/// `}`, `[` and `]`.
fn object_bytes(word: u64) -> u64 {
    let folded = word | splat(0x20);
    zero_bytes_exact(word ^ splat(b'"'))
        | zero_bytes_exact(word ^ splat(b'\\'))
        | zero_bytes_exact(word ^ splat(b'\n'))
        | zero_bytes_exact(folded ^ splat(b'{'))
        | zero_bytes_exact(folded ^ splat(b'}'))
}

/// The splitter's state between chunks.
#[derive(Debug)]
pub struct Splitter {
    max_fragment: usize,
    /// Absolute offset of the next byte fed.
    position: u64,
    next_index: u64,
    open: Open,
    /// Offset and length so far of the open fragment.
    open_offset: u64,
    open_length: u64,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// The last byte outside strings and whitespace seen in the open object in earlier chunks
    /// (what precedes a `{` decides whether it is a nested value).
    last_significant: u8,
    /// Bit `d - 1` set when the container at depth `d` (up to 64) is an object.
    objects: u64,
    seen_content: bool,
    in_array: bool,
    /// Bytes of the open fragment from earlier chunks.
    carry: Vec<u8>,
}

/// Bytes skipped between fragments at the top level.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Splitter {
    /// A splitter that keeps at most `max_fragment` bytes of one fragment.
    pub fn new(max_fragment: usize) -> Self {
        Self {
            max_fragment: max_fragment.max(1),
            position: 0,
            next_index: 0,
            open: Open::None,
            open_offset: 0,
            open_length: 0,
            depth: 0,
            in_string: false,
            escape: false,
            last_significant: 0,
            objects: 0,
            seen_content: false,
            in_array: false,
            carry: Vec::new(),
        }
    }

    /// Total bytes fed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Feeds the next chunk; `emit` is called for every fragment that ends in it.
    pub fn feed(&mut self, chunk: &[u8], emit: &mut impl FnMut(Fragment<'_>)) {
        let base = self.position;
        // Start (in this chunk) of the open fragment's bytes.
        let mut start = 0usize;
        let mut i = 0usize;
        let len = chunk.len();
        while i < len {
            match self.open {
                Open::Object => match self.scan(chunk, i) {
                    Stop::End => i = len,
                    Stop::Close(j) => {
                        self.close(chunk, start, j + 1, PieceKind::Object, emit);
                        i = j + 1;
                    }
                    Stop::Broken(j) => {
                        // A raw newline inside a string: the object is broken; what follows
                        // up to the next `{` belongs to it.
                        self.open = Open::Broken;
                        i = j + 1;
                    }
                    Stop::Restart(j) => {
                        // A new line starts a new object: the open one lacks its end.
                        self.close(chunk, start, j, PieceKind::Object, emit);
                        self.begin(Open::Object, base + j as u64);
                        start = j;
                        self.depth = 1;
                        i = j + 1;
                    }
                },
                Open::Stray | Open::Broken => match memchr(b'{', &chunk[i..]) {
                    None => i = len,
                    Some(k) => {
                        let j = i + k;
                        let kind = if self.open == Open::Stray {
                            PieceKind::Stray
                        } else {
                            PieceKind::Object
                        };
                        self.close(chunk, start, j, kind, emit);
                        // The `{` is handled at the top level.
                        i = j;
                    }
                },
                Open::None => {
                    let b = chunk[i];
                    let first = !self.seen_content;
                    if !is_space(b) {
                        self.seen_content = true;
                    }
                    match b {
                        b if is_space(b) => {}
                        b'{' => {
                            self.begin(Open::Object, base + i as u64);
                            start = i;
                            self.depth = 1;
                        }
                        b'[' if first => self.in_array = true,
                        b',' | b']' if self.in_array => {}
                        _ => {
                            self.begin(Open::Stray, base + i as u64);
                            start = i;
                        }
                    }
                    i += 1;
                }
            }
        }
        if self.open != Open::None {
            self.keep(&chunk[start..]);
        }
        self.position = base + len as u64;
    }

    /// Scans an open object from `chunk[i]`, eight bytes at a time, tracking strings, escapes
    /// and depth, up to the first byte that ends or cuts the object (or the chunk's end).
    fn scan(&mut self, chunk: &[u8], mut i: usize) -> Stop {
        let len = chunk.len();
        // Bytes before `at` are skipped (an escaped byte).
        let mut at = i;
        if self.escape && i < len {
            self.escape = false;
            at = i + 1;
        }
        while i < len {
            let mut word = [0u8; 8];
            let n = (len - i).min(8);
            word[..n].copy_from_slice(&chunk[i..i + n]);
            // Padding zeros match none of the bytes looked for.
            let mut found = object_bytes(u64::from_le_bytes(word));
            while found != 0 {
                let j = i + (found.trailing_zeros() / 8) as usize;
                found &= found - 1;
                if j < at {
                    continue;
                }
                let b = chunk[j];
                if self.in_string {
                    match b {
                        b'"' => self.in_string = false,
                        b'\\' => {
                            if j + 1 < len {
                                at = j + 2;
                            } else {
                                self.escape = true;
                            }
                        }
                        b'\n' => return Stop::Broken(j),
                        _ => {}
                    }
                } else {
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => {
                            if b == b'{' && self.depth > 0 && !self.value_may_start(chunk, j) {
                                return Stop::Restart(j);
                            }
                            self.depth += 1;
                            if self.depth <= 64 {
                                let bit = 1u64 << (self.depth - 1);
                                if b == b'{' {
                                    self.objects |= bit;
                                } else {
                                    self.objects &= !bit;
                                }
                            }
                        }
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                return Stop::Close(j);
                            }
                        }
                        _ => {}
                    }
                }
            }
            i += 8;
        }
        if let Some(b) = chunk.iter().rev().find(|b| !is_space(**b)) {
            self.last_significant = *b;
        }
        Stop::End
    }

    /// Ends the input: an open object is a truncated tail, open stray bytes are stray.
    pub fn finish(&mut self, emit: &mut impl FnMut(Fragment<'_>)) {
        let kind = match self.open {
            Open::None => return,
            Open::Object => PieceKind::Truncated,
            Open::Stray => PieceKind::Stray,
            Open::Broken => PieceKind::Object,
        };
        self.close(&[], 0, 0, kind, emit);
    }

    /// Whether a value may start at `chunk[j]` (a `{` outside strings in the open object): after
    /// `:`, after `[`, or after `,` in an array (or deeper than 64 levels, not tracked).
    fn value_may_start(&self, chunk: &[u8], j: usize) -> bool {
        let previous = chunk[..j]
            .iter()
            .rev()
            .find(|b| !is_space(**b))
            .copied()
            .unwrap_or(self.last_significant);
        let in_array = self.depth > 64 || self.objects & (1u64 << (self.depth - 1)) == 0;
        matches!(previous, b':' | b'[') || (previous == b',' && in_array)
    }

    fn begin(&mut self, open: Open, offset: u64) {
        self.open = open;
        self.last_significant = b'{';
        self.objects = 1;
        self.open_offset = offset;
        self.open_length = 0;
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        self.carry.clear();
    }

    /// Appends bytes of the open fragment, up to the limit.
    fn keep(&mut self, bytes: &[u8]) {
        self.open_length += bytes.len() as u64;
        let room = self.max_fragment.saturating_sub(self.carry.len());
        self.carry
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Emits the open fragment, whose last bytes are `chunk[start..end]`.
    fn close(
        &mut self,
        chunk: &[u8],
        start: usize,
        end: usize,
        kind: PieceKind,
        emit: &mut impl FnMut(Fragment<'_>),
    ) {
        let tail = &chunk[start..end];
        let length = self.open_length + tail.len() as u64;
        let spans = !self.carry.is_empty() || self.open_length > 0;
        let index = self.next_index;
        self.next_index += 1;
        let offset = self.open_offset;
        let oversized = length > self.max_fragment as u64;
        let kind = if oversized {
            PieceKind::Oversized
        } else {
            kind
        };
        // A fragment ends before the whitespace that precedes the next one.
        let trim =
            |bytes: &[u8]| bytes.len() - bytes.iter().rev().take_while(|b| is_space(**b)).count();
        if spans {
            let room = self.max_fragment.saturating_sub(self.carry.len());
            self.carry.extend_from_slice(&tail[..tail.len().min(room)]);
            let carry = std::mem::take(&mut self.carry);
            let kept = trim(&carry);
            let length = if oversized {
                length
            } else {
                length - (carry.len() - kept) as u64
            };
            emit(Fragment {
                index,
                offset,
                length,
                bytes: &carry[..kept],
                kind,
            });
            self.carry = carry;
            self.carry.clear();
        } else {
            let kept = trim(tail);
            let shown = kept.min(self.max_fragment);
            emit(Fragment {
                index,
                offset,
                length: if oversized { length } else { kept as u64 },
                bytes: &tail[..shown],
                kind,
            });
        }
        self.open = Open::None;
        self.open_length = 0;
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct Owned {
        index: u64,
        offset: u64,
        length: u64,
        text: String,
        kind: PieceKind,
    }

    fn split_chunks(chunks: &[&[u8]], max: usize) -> Vec<Owned> {
        let mut out = Vec::new();
        let mut splitter = Splitter::new(max);
        let mut emit = |f: Fragment<'_>| {
            out.push(Owned {
                index: f.index,
                offset: f.offset,
                length: f.length,
                text: String::from_utf8_lossy(f.bytes).into_owned(),
                kind: f.kind,
            })
        };
        for chunk in chunks {
            splitter.feed(chunk, &mut emit);
        }
        splitter.finish(&mut emit);
        out
    }

    /// Splits `input` whole, then at every possible chunk boundary, and checks the results
    /// agree.
    fn split(input: &str) -> Vec<Owned> {
        let whole = split_chunks(&[input.as_bytes()], 1 << 20);
        let bytes = input.as_bytes();
        for cut in 0..=bytes.len() {
            let parts = split_chunks(&[&bytes[..cut], &bytes[cut..]], 1 << 20);
            assert_eq!(parts, whole, "cut at {cut}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split_chunks(&single, 1 << 20), whole, "byte by byte");
        whole
    }

    fn texts(fragments: &[Owned]) -> Vec<(&str, PieceKind, u64)> {
        fragments
            .iter()
            .map(|f| (f.text.as_str(), f.kind, f.offset))
            .collect()
    }

    use PieceKind::*;

    #[test]
    fn back_to_back_with_and_without_newlines() {
        let input = "{\"a\":1}{\"b\":{\"c\":[1,{}]}}\n{\"d\":\"}{\\\"\"}\r\n  {\"e\":2}";
        let out = split(input);
        assert_eq!(
            texts(&out),
            vec![
                ("{\"a\":1}", Object, 0),
                ("{\"b\":{\"c\":[1,{}]}}", Object, 7),
                ("{\"d\":\"}{\\\"\"}", Object, 26),
                ("{\"e\":2}", Object, 42),
            ]
        );
        assert_eq!(out[3].index, 3);
        assert_eq!(out[3].length, 7);
    }

    #[test]
    fn arrays_and_pretty_printing() {
        let input = "[\n  {\n    \"a\": {\n      \"b\": 1\n    }\n  },\n  {\"c\": 2}\n]\n";
        let out = split(input);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].text, "{\n    \"a\": {\n      \"b\": 1\n    }\n  }");
        assert_eq!(out[1].text, "{\"c\": 2}");
        assert_eq!(out[1].offset, 43);
        assert!(split("[]").is_empty());
        assert!(split(" \n ").is_empty());
    }

    #[test]
    fn stray_bytes_broken_strings_and_truncated_tails() {
        let input = "{\"a\":1}\noops 42\n{\"b\":\"no end\n{\"c\":3}\n{\"d\":{\"x\":1}\n{\"e\":5}\n{\"f\":\"tru";
        let out = split(input);
        assert_eq!(
            texts(&out),
            vec![
                ("{\"a\":1}", Object, 0),
                ("oops 42", Stray, 8),
                ("{\"b\":\"no end", Object, 16),
                ("{\"c\":3}", Object, 29),
                ("{\"d\":{\"x\":1}", Object, 37),
                ("{\"e\":5}", Object, 50),
                ("{\"f\":\"tru", Truncated, 58),
            ]
        );
        assert_eq!(out[6].length, 9);
    }

    #[test]
    fn nested_objects_in_column_zero_stay_whole() {
        // Pretty-printed without indentation: every nested `{` opens a line.
        let event =
            "{\n\"a\": 1,\n\"data\":\n{\n\"b\":\n{\n\"c\": [\n{\n\"d\": 2\n},\n{}\n]\n}\n}\n}";
        let input = format!("{event}\n{event}\n");
        let out = split(&input);
        assert_eq!(
            texts(&out),
            vec![(event, Object, 0), (event, Object, event.len() as u64 + 1)]
        );
    }

    #[test]
    fn a_brace_where_no_value_can_stand_starts_a_new_object() {
        // After a complete value, after a key, after `{` or after `,` in an object: the open
        // object lacks its end. After `,` in an array it is an element.
        let input = "{\"a\":{\"x\":1} {\"b\":2}{\"c\":\"s\"\n{\"d\" {\"e\":[1,{\"f\":3}]}{{\"g\":4}{\"h\":5,{\"i\":6}";
        let out = split(input);
        assert_eq!(
            texts(&out),
            vec![
                ("{\"a\":{\"x\":1}", Object, 0),
                ("{\"b\":2}", Object, 13),
                ("{\"c\":\"s\"", Object, 20),
                ("{\"d\"", Object, 29),
                ("{\"e\":[1,{\"f\":3}]}", Object, 34),
                ("{", Object, 51),
                ("{\"g\":4}", Object, 52),
                ("{\"h\":5,", Object, 59),
                ("{\"i\":6}", Object, 66),
            ]
        );
    }

    #[test]
    fn a_raw_newline_in_a_string_makes_one_fragment_up_to_the_next_object() {
        let input = "{\"a\":\"x\ny\",\"b\":1}\n{\"c\":2}\n{\"f\":\"tail\nend";
        let out = split(input);
        assert_eq!(
            texts(&out),
            vec![
                ("{\"a\":\"x\ny\",\"b\":1}", Object, 0),
                ("{\"c\":2}", Object, 18),
                ("{\"f\":\"tail\nend", Object, 26),
            ]
        );
        // In an array, the broken element runs on to the next element.
        let out = split("[{\"d\":\"p\nq\"},{\"e\":3}]");
        assert_eq!(
            texts(&out),
            vec![("{\"d\":\"p\nq\"},", Object, 1), ("{\"e\":3}", Object, 13)]
        );
    }

    #[test]
    fn stray_at_the_end_and_commas_outside_arrays() {
        let out = split("{\"a\":1},{\"b\":2}\n]junk");
        assert_eq!(
            texts(&out),
            vec![
                ("{\"a\":1}", Object, 0),
                (",", Stray, 7),
                ("{\"b\":2}", Object, 8),
                ("]junk", Stray, 16),
            ]
        );
    }

    #[test]
    fn word_masks_are_exact() {
        // Every byte value at every position of a word, next to bytes that borrow or carry.
        for b in 0..=255u8 {
            for at in 0..8 {
                for fill in [0x00, 0x01, 0x22, 0x23, 0x5b, 0x7b, 0x7f, 0x80, 0xff] {
                    let mut word = [fill; 8];
                    word[at] = b;
                    let found = object_bytes(u64::from_le_bytes(word));
                    let expected = word.iter().enumerate().fold(0u64, |mask, (k, v)| {
                        if matches!(v, b'"' | b'\\' | b'\n' | b'{' | b'}' | b'[' | b']') {
                            mask | (0x80 << (8 * k))
                        } else {
                            mask
                        }
                    });
                    assert_eq!(found, expected, "{word:?}");
                }
            }
        }
    }

    #[test]
    fn oversized_fragments_keep_their_beginning_and_length() {
        let input = "{\"a\":\"0123456789\"}{\"b\":1}";
        for chunks in [vec![input.as_bytes()], input.as_bytes().chunks(3).collect()] {
            let out = split_chunks(&chunks, 8);
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].text, "{\"a\":\"01");
            assert_eq!(out[0].kind, PieceKind::Oversized);
            assert_eq!(out[0].length, 18);
            assert_eq!(out[1].text, "{\"b\":1}");
            assert_eq!(out[1].kind, PieceKind::Object);
            assert_eq!(out[1].offset, 18);
        }
    }
}
