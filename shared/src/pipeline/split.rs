//! A streaming splitter of JSON objects written back to back (with or without whitespace or
//! newlines between them), or wrapped in one JSON array.
//!
//! It does not parse: it tracks strings, escapes and nesting depth to find where each
//! top-level object starts and ends, and hands out each fragment with its byte offset in the
//! (decompressed) stream. Parsing is left to the caller, so one broken object costs only
//! itself:
//!
//! - Bytes at the top level that do not start an object (`oops`, `42`) are a
//!   [`FragmentKind::Stray`] fragment that runs until the next `{`.
//! - A raw newline inside a string cannot occur in valid JSON; the object is cut there (it
//!   fails to parse) and scanning resumes after the newline.
//! - A `{` at the start of a line while an object is still open (a missing `}` in a
//!   newline-delimited file) cuts the open object there and starts a new one.
//! - An object still open at the end of the input is a [`FragmentKind::Truncated`] tail.
//!
//! Fragments are borrowed from the fed chunk when they lie inside it; only a fragment that
//! spans chunks is copied, into a buffer of at most `max_fragment` bytes. A longer fragment
//! is reported with its first `max_fragment` bytes and `oversized` set, so memory stays
//! bounded whatever the input.

use memchr::memchr;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bit 7 set in each zero byte of `v` (the lowest one exact, higher ones may be spurious).
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGH
}

fn splat(b: u8) -> u64 {
    ONES * u64::from(b)
}

/// The index of the first byte of `bytes` for which `mask` (on 8 bytes at a time) or `test`
/// (on single bytes) holds.
fn find(bytes: &[u8], mask: impl Fn(u64) -> u64, test: impl Fn(u8) -> bool) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let found = mask(u64::from_le_bytes(word));
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..].iter().position(|b| test(*b)).map(|k| i + k)
}

/// Inside a string: the next `"`, `\\` or newline.
fn find_in_string(bytes: &[u8]) -> Option<usize> {
    find(
        bytes,
        |x| {
            zero_bytes(x ^ splat(b'"'))
                | zero_bytes(x ^ splat(b'\\'))
                | zero_bytes(x ^ splat(b'\n'))
        },
        |b| matches!(b, b'"' | b'\\' | b'\n'),
    )
}

/// Inside an object, outside strings: the next `"`, `{`, `}`, `[`, `]` or newline. (`[` and
/// `{`, `]` and `}` differ only in bit 5.)
fn find_structural(bytes: &[u8]) -> Option<usize> {
    find(
        bytes,
        |x| {
            let folded = x | splat(0x20);
            zero_bytes(x ^ splat(b'"'))
                | zero_bytes(folded ^ splat(b'{'))
                | zero_bytes(folded ^ splat(b'}'))
                | zero_bytes(x ^ splat(b'\n'))
        },
        |b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']' | b'\n'),
    )
}

/// What a fragment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    /// Balanced braces: an object, if it parses.
    Object,
    /// Top-level bytes that are not an object.
    Stray,
    /// An object cut off by the end of the input.
    Truncated,
}

/// One fragment of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// 0-based ordinal of the fragment in the stream.
    pub index: u64,
    /// Byte offset of its first byte in the stream.
    pub offset: u64,
    /// Its length in the stream (more than `bytes.len()` when `oversized`).
    pub length: u64,
    /// Its bytes (only the first `max_fragment` when `oversized`).
    pub bytes: &'a [u8],
    pub kind: FragmentKind,
    /// Longer than the splitter's limit: `bytes` is only its beginning.
    pub oversized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Object,
    Stray,
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
    /// The previous byte was a newline (for the column-0 `{` rule).
    line_start: bool,
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
            line_start: true,
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
                Open::Object if self.in_string => {
                    if self.escape {
                        self.escape = false;
                        i += 1;
                        continue;
                    }
                    match find_in_string(&chunk[i..]) {
                        None => i = len,
                        Some(k) => {
                            let j = i + k;
                            match chunk[j] {
                                b'\\' => {
                                    self.escape = true;
                                    i = j + 1;
                                }
                                b'"' => {
                                    self.in_string = false;
                                    self.line_start = false;
                                    i = j + 1;
                                }
                                _ => {
                                    // A raw newline inside a string: the object is broken.
                                    self.close(chunk, start, j, FragmentKind::Object, emit);
                                    self.line_start = true;
                                    i = j + 1;
                                }
                            }
                        }
                    }
                }
                Open::Object => {
                    let Some(k) = find_structural(&chunk[i..]) else {
                        self.line_start = false;
                        i = len;
                        continue;
                    };
                    let j = i + k;
                    if k > 0 {
                        self.line_start = false;
                    }
                    let b = chunk[j];
                    match b {
                        b'"' => self.in_string = true,
                        b'{' if self.line_start && self.depth > 0 => {
                            // A new line starts a new object: the open one lacks its end.
                            self.close(chunk, start, j, FragmentKind::Object, emit);
                            self.begin(Open::Object, base + j as u64);
                            start = j;
                            self.depth = 1;
                        }
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                self.close(chunk, start, j + 1, FragmentKind::Object, emit);
                            }
                        }
                        _ => {}
                    }
                    self.line_start = b == b'\n';
                    i = j + 1;
                }
                Open::Stray => match memchr(b'{', &chunk[i..]) {
                    None => i = len,
                    Some(k) => {
                        let j = i + k;
                        self.close(chunk, start, j, FragmentKind::Stray, emit);
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
                    self.line_start = b == b'\n';
                    i += 1;
                }
            }
        }
        if self.open != Open::None {
            self.keep(&chunk[start..]);
        }
        self.position = base + len as u64;
    }

    /// Ends the input: an open object is a truncated tail, open stray bytes are stray.
    pub fn finish(&mut self, emit: &mut impl FnMut(Fragment<'_>)) {
        let kind = match self.open {
            Open::None => return,
            Open::Object => FragmentKind::Truncated,
            Open::Stray => FragmentKind::Stray,
        };
        self.close(&[], 0, 0, kind, emit);
    }

    fn begin(&mut self, open: Open, offset: u64) {
        self.open = open;
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
        kind: FragmentKind,
        emit: &mut impl FnMut(Fragment<'_>),
    ) {
        let tail = &chunk[start..end];
        let length = self.open_length + tail.len() as u64;
        let spans = !self.carry.is_empty() || self.open_length > 0;
        let index = self.next_index;
        self.next_index += 1;
        let offset = self.open_offset;
        let oversized = length > self.max_fragment as u64;
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
                oversized,
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
                oversized,
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
        kind: FragmentKind,
        oversized: bool,
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
                oversized: f.oversized,
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

    fn texts(fragments: &[Owned]) -> Vec<(&str, FragmentKind, u64)> {
        fragments
            .iter()
            .map(|f| (f.text.as_str(), f.kind, f.offset))
            .collect()
    }

    use FragmentKind::*;

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
    fn word_scans_find_the_first_byte() {
        let text = b"0123456789abcdef\xc3\xa9xyz\"uvw\\{[}]\n";
        for start in 0..text.len() {
            let bytes = &text[start..];
            let expect_string = bytes.iter().position(|b| matches!(b, b'"' | b'\\' | b'\n'));
            assert_eq!(find_in_string(bytes), expect_string, "{start}");
            let expect_structural = bytes
                .iter()
                .position(|b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']' | b'\n'));
            assert_eq!(find_structural(bytes), expect_structural, "{start}");
        }
        assert_eq!(find_structural(b"\x5b"), Some(0));
        assert_eq!(find_structural(b"\x7b\x5d"), Some(0));
        assert_eq!(find_structural(b"\x3b\x1b\x7a\xfb\xdbabc"), None);
    }

    #[test]
    fn oversized_fragments_keep_their_beginning_and_length() {
        let input = "{\"a\":\"0123456789\"}{\"b\":1}";
        for chunks in [vec![input.as_bytes()], input.as_bytes().chunks(3).collect()] {
            let out = split_chunks(&chunks, 8);
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].text, "{\"a\":\"01");
            assert!(out[0].oversized);
            assert_eq!(out[0].length, 18);
            assert_eq!(out[1].text, "{\"b\":1}");
            assert!(!out[1].oversized);
            assert_eq!(out[1].offset, 18);
        }
    }
}
