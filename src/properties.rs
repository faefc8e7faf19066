//! What the job reads of a PostHog event's `properties` JSON text: the organization
//! (`$groups.<group type>`, `organization` by default) and the page's URL
//! (`$current_url`). A targeted scan, not a full parse into values: it walks the
//! top-level object once, decodes only the keys it compares and the two values it
//! keeps, and skips every other value by its structure. It is still exact: keys are
//! compared after unescaping (`"\u0024groups"` is `$groups`), in any order, at the top
//! level only (a nested `$current_url` is not the page's), and a key that only looks
//! alike (`$groups_extra`) is another key.
//!
//! A text is unreadable (`Err`) unless it is one JSON object: strings closed, escapes
//! valid, no raw control character (below U+0020) inside a string (JSON requires
//! them escaped, and serde_json and Python's `json` reject them), brackets and braces
//! matched, commas and colons where they belong, nothing after the object but
//! whitespace. Numbers and literals (`true`, `null`) are checked
//! against JSON's grammar. A `\u` escape of a lone surrogate is grammatical JSON and
//! decodes to U+FFFD. Nesting deeper than 128 objects and arrays is unreadable (as in
//! serde_json), so no text can exhaust the stack.

use std::borrow::Cow;

/// The two properties the job reads, decoded. An organization given as a JSON number
/// is taken as its text (`"org": 42` is org `42`); any other non-string value counts
/// as absent.
///
/// As text (`str`), or as the text's bytes (`[u8]`, UTF-8: `extract_bytes`).
pub struct Found<'a, T: ?Sized + ToOwned = str> {
    pub org: Option<Cow<'a, T>>,
    pub url: Option<Cow<'a, T>>,
}

// By hand: a derive would ask `T` for what only its owned form has.
impl<T: ?Sized + ToOwned<Owned: std::fmt::Debug> + std::fmt::Debug> std::fmt::Debug
    for Found<'_, T>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (f.debug_struct("Found"))
            .field("org", &self.org)
            .field("url", &self.url)
            .finish()
    }
}

impl<T: ?Sized + ToOwned + PartialEq> PartialEq for Found<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.org == other.org && self.url == other.url
    }
}

impl<T: ?Sized + ToOwned + Eq> Eq for Found<'_, T> {}

impl<T: ?Sized + ToOwned> Default for Found<'_, T> {
    fn default() -> Self {
        Found {
            org: None,
            url: None,
        }
    }
}

/// The properties text is not one JSON object.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable;

type Result<T> = std::result::Result<T, Unreadable>;

/// The organization (the `group_type` key of `$groups`) and `$current_url` of one
/// event's properties.
pub fn extract<'a>(json: &'a str, group_type: &str) -> Result<Found<'a>> {
    // A `str` is UTF-8: nothing to check.
    let no_check = |_: &[u8]| Ok::<(), std::convert::Infallible>(());
    let found = match extract_text(json.as_bytes(), group_type, no_check) {
        Ok(found) => found?,
        Err(never) => match never {},
    };
    Ok(Found {
        org: found.org.map(text).transpose()?,
        url: found.url.map(text).transpose()?,
    })
}

/// `extract` of a text given as bytes (a Parquet string read straight from its
/// page), the two values as bytes too (UTF-8, as the text is: turning them into
/// `str` here cost a mispredicted branch or two per event, so the export reader does
/// it once per distinct value): `Err` when the bytes are not UTF-8 at all, which is
/// no JSON text and no string of a string column either. Only a text holding a byte
/// past ASCII is checked whole (`std::str::from_utf8`): the marks of `mark_specials`
/// say whether it holds one, and most texts hold none (a check of every text was
/// 2.5% of the 10M export job's CPU).
pub fn extract_bytes<'a>(
    json: &'a [u8],
    group_type: &str,
) -> std::result::Result<Result<Found<'a, [u8]>>, std::str::Utf8Error> {
    extract_text(json, group_type, |bytes| {
        std::str::from_utf8(bytes).map(|_| ())
    })
}

/// The scan of `json` once its marks are made; `check` is called on the whole text
/// when it holds a byte past ASCII, and its error returned.
fn extract_text<'a, E>(
    json: &'a [u8],
    group_type: &str,
    check: impl FnOnce(&[u8]) -> std::result::Result<(), E>,
) -> std::result::Result<Result<Found<'a, [u8]>>, E> {
    SPECIALS.with_borrow_mut(|specials| {
        let marks = mark_specials(json, specials);
        if marks.past_ascii {
            check(json)?;
        }
        Ok(Scanner {
            bytes: json,
            at: 0,
            depth: 0,
            controls: marks.controls,
            specials,
        }
        .extract(group_type))
    })
}

thread_local! {
    /// `mark_specials`' bits, kept from text to text on each thread.
    static SPECIALS: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks each `"` and `\\` of `bytes` in `specials` (a bit per byte, the first byte
/// the lowest bit of the first word), 64 bytes a step (`sys::byte_classes`); says
/// whether any byte is a control character (below U+0020, whitespace included:
/// most texts hold none at all, which spares the check of every string run) or
/// past ASCII.
///
/// Why: finding each string's end by looking at its bytes (eight at a time, then
/// `memchr2`) was a third of the scan's instructions and a branch mispredicted at
/// most strings' ends; the marks cost a few instructions per 16 bytes, and a
/// string's end is then the next set bit (session 30: 2,850 -> 2,525 instructions
/// and 20 -> 15 mispredicted branches per export text, cachegrind).
fn mark_specials(bytes: &[u8], specials: &mut Vec<u64>) -> Marks {
    specials.clear();
    let mut marks = Marks {
        controls: false,
        past_ascii: false,
    };
    let mut mark = |block: &[u8; 64]| {
        let classes = crate::sys::byte_classes(block);
        specials.push(classes.quote_or_backslash);
        marks.controls |= classes.control;
        marks.past_ascii |= classes.past_ascii;
    };
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        mark(block.try_into().expect("64 bytes"));
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // The text's last bytes, padded with spaces (in no class).
        let mut padded = [b' '; 64];
        padded[..rest.len()].copy_from_slice(rest);
        mark(&padded);
    }
    marks
}

/// What `mark_specials` saw of a whole text besides its marks.
struct Marks {
    /// A byte below 0x20.
    controls: bool,
    /// A byte of 0x80 or more.
    past_ascii: bool,
}

impl<'a> Scanner<'a, '_> {
    /// `extract`'s scan of the whole text.
    fn extract(mut self, group_type: &str) -> Result<Found<'a, [u8]>> {
        let s = &mut self;
        let mut found = Found::default();
        s.skip_ws();
        s.expect(b'{')?;
        s.object_entries(|s, key| {
            match key.as_ref() {
                b"$current_url" => found.url = s.string_value()?,
                b"$groups" => {
                    if s.peek() == Some(b'{') {
                        s.at += 1;
                        let mut org = None;
                        s.object_entries(|s, group| {
                            if group.as_ref() == group_type.as_bytes() {
                                org = s.scalar_text()?;
                            } else {
                                s.skip_value()?;
                            }
                            Ok(())
                        })?;
                        found.org = org;
                    } else {
                        found.org = None;
                        s.skip_value()?;
                    }
                }
                _ => s.skip_value()?,
            }
            Ok(())
        })?;
        s.skip_ws();
        if s.at != s.bytes.len() {
            return Err(Unreadable);
        }
        Ok(found)
    }
}

/// The scan of one text, as bytes: the text is known to be UTF-8 (`extract_text`),
/// and every slice taken starts and ends next to an ASCII byte (a quote, a bracket,
/// a comma...), so each is UTF-8 too.
struct Scanner<'a, 's> {
    bytes: &'a [u8],
    at: usize,
    /// Objects and arrays open around the scan.
    depth: u32,
    /// The text holds a control character (whitespace included) somewhere.
    controls: bool,
    /// A bit per byte of the text, set at each `"` and `\\` (`mark_specials`).
    specials: &'s [u64],
}

/// A value the scan decoded, as text. Slices of a UTF-8 text between ASCII bytes,
/// and decoded escapes, are UTF-8: the check cannot fail.
fn text(bytes: Cow<'_, [u8]>) -> Result<Cow<'_, str>> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| Unreadable),
        Cow::Owned(v) => String::from_utf8(v).map(Cow::Owned).map_err(|_| Unreadable),
    }
}

/// A lone surrogate escape (grammatical JSON, no character) decodes to U+FFFD.
const LONE_SURROGATE: u32 = 0xFFFD;

/// The deepest nesting read (as serde_json's default): deeper is unreadable, not a
/// stack overflow.
const MAX_DEPTH: u32 = 128;

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Unreadable)
        }
    }

    /// The entries of an object whose `{` was just read, up to and including its `}`:
    /// `entry` is called with each key, positioned at the value (whitespace
    /// skipped), and must consume the value.
    fn object_entries(
        &mut self,
        entry: impl FnMut(&mut Self, Cow<'a, [u8]>) -> Result<()>,
    ) -> Result<()> {
        self.object(Self::string, entry)
    }

    /// An object whose `{` was just read, its keys read by `key` (decoded, or only
    /// checked) and each value consumed by `entry`, one level deeper.
    fn object<K>(
        &mut self,
        key: impl Fn(&mut Self) -> Result<K>,
        mut entry: impl FnMut(&mut Self, K) -> Result<()>,
    ) -> Result<()> {
        self.nested(|s| {
            s.skip_ws();
            if s.peek() == Some(b'}') {
                s.at += 1;
                return Ok(());
            }
            loop {
                s.skip_ws();
                s.expect(b'"')?;
                let k = key(s)?;
                s.skip_ws();
                s.expect(b':')?;
                s.skip_ws();
                entry(s, k)?;
                s.skip_ws();
                match s.peek() {
                    Some(b',') => s.at += 1,
                    Some(b'}') => {
                        s.at += 1;
                        return Ok(());
                    }
                    _ => return Err(Unreadable),
                }
            }
        })
    }

    /// `inner` one object or array deeper: past `MAX_DEPTH` the text is unreadable.
    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Unreadable);
        }
        let done = inner(self);
        self.depth -= 1;
        done
    }

    /// A string whose opening quote was just read, up to and including its closing
    /// quote; borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        let start = self.at;
        let end = self.string_run()?;
        if self.bytes[start + end] == b'"' {
            self.at = start + end + 1;
            return Ok(Cow::Borrowed(&self.bytes[start..start + end]));
        }
        // Escapes: decode from here.
        let mut out = self.bytes[start..start + end].to_vec();
        self.at = start + end;
        loop {
            let run = self.string_run()?;
            out.extend_from_slice(&self.bytes[self.at..self.at + run]);
            self.at += run;
            if self.bytes[self.at] == b'"' {
                self.at += 1;
                return Ok(Cow::Owned(out));
            }
            self.at += 1;
            let escaped = self.peek().ok_or(Unreadable)?;
            self.at += 1;
            match escaped {
                b'"' | b'\\' | b'/' => out.push(escaped),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0C),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let c = self.unicode_escape()?;
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => return Err(Unreadable),
            }
        }
    }

    /// The length of the string's plain run from here: up to its next quote or
    /// backslash, which must come, with no raw control character before it.
    fn string_run(&self) -> Result<usize> {
        let at = self.at;
        let word = at / 64;
        let mut bits = self.specials.get(word).map_or(0, |&w| w >> (at % 64));
        let mut from = at;
        if bits == 0 {
            // Past this word: the next word with a mark, if any.
            let (next, w) = (self.specials.iter().enumerate())
                .skip(word + 1)
                .find(|(_, &w)| w != 0)
                .ok_or(Unreadable)?;
            (bits, from) = (*w, next * 64);
        }
        let run = from + bits.trailing_zeros() as usize - at;
        if self.controls && has_control(&self.bytes[self.at..self.at + run]) {
            return Err(Unreadable);
        }
        Ok(run)
    }

    /// The character of a `\u` escape whose `\u` was just read (a surrogate pair
    /// takes two escapes; a lone surrogate is unreadable).
    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                // A pair when a low surrogate escape follows; else a lone one.
                let pair = self.bytes.get(self.at..self.at + 2) == Some(b"\\u")
                    && self
                        .bytes
                        .get(self.at + 2..self.at + 6)
                        .and_then(|d| u32::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok())
                        .is_some_and(|c| (0xDC00..=0xDFFF).contains(&c));
                if pair {
                    self.at += 2;
                    let second = self.hex4()?;
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else {
                    LONE_SURROGATE
                }
            }
            0xDC00..=0xDFFF => LONE_SURROGATE,
            c => c,
        };
        Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(Unreadable)?;
        let mut v = 0;
        for &d in digits {
            v = v * 16 + (d as char).to_digit(16).ok_or(Unreadable)?;
        }
        self.at += 4;
        Ok(v)
    }

    /// A string value, decoded; any other value is skipped and gives `None`.
    fn string_value(&mut self) -> Result<Option<Cow<'a, [u8]>>> {
        if self.peek() == Some(b'"') {
            self.at += 1;
            return self.string().map(Some);
        }
        self.skip_value()?;
        Ok(None)
    }

    /// A string value decoded, or a number as its text; any other value is skipped
    /// and gives `None`.
    fn scalar_text(&mut self) -> Result<Option<Cow<'a, [u8]>>> {
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                self.string().map(Some)
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                self.skip_value()?;
                Ok(Some(Cow::Borrowed(&self.bytes[start..self.at])))
            }
            _ => {
                self.skip_value()?;
                Ok(None)
            }
        }
    }

    /// Skips one value: a string, an object or array (whole, checked for matching
    /// brackets and the place of commas and colons), or a number or literal.
    fn skip_value(&mut self) -> Result<()> {
        match self.peek().ok_or(Unreadable)? {
            b'"' => {
                self.at += 1;
                self.skip_string()
            }
            b'{' => {
                self.at += 1;
                self.skip_object()
            }
            b'[' => {
                self.at += 1;
                self.nested(Self::skip_array)
            }
            _ => self.skip_scalar(),
        }
    }

    /// Skips an object whose `{` was just read; its keys are checked, not decoded.
    fn skip_object(&mut self) -> Result<()> {
        self.object(Self::skip_string, |s, ()| s.skip_value())
    }

    /// Skips an array whose `[` was just read.
    fn skip_array(&mut self) -> Result<()> {
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            self.skip_value()?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Unreadable),
            }
        }
    }

    /// Skips a number or a literal (`true`, `false`, `null`), checked against
    /// JSON's grammar as it goes: whatever follows must then be what the enclosing
    /// object or array allows (`12abc` and `truex` stay unreadable). A number's
    /// digits are counted eight at a time (`digits`): a byte at a time, the scalars'
    /// loops were a mispredicted branch or two per event (every export text has a
    /// `$time`).
    fn skip_scalar(&mut self) -> Result<()> {
        let rest = &self.bytes[self.at..];
        let literal = [&b"true"[..], b"false", b"null"]
            .into_iter()
            .find(|l| rest.starts_with(l));
        if let Some(l) = literal {
            self.at += l.len();
            return Ok(());
        }
        // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.at += self.digits(),
            _ => return Err(Unreadable),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    /// Skips one or more digits.
    fn some_digits(&mut self) -> Result<()> {
        match self.digits() {
            0 => Err(Unreadable),
            n => {
                self.at += n;
                Ok(())
            }
        }
    }

    /// How many ASCII digits follow, eight bytes a step (`digit_bytes`).
    fn digits(&self) -> usize {
        const HIGH: u64 = each_byte(0x80);
        let b = &self.bytes[self.at..];
        let mut n = 0;
        while n + 8 <= b.len() {
            let w = word(&b[n..]);
            // A byte past ASCII is no digit.
            let not_digit = (!digit_bytes(w) | w) & HIGH;
            if not_digit != 0 {
                return n + not_digit.trailing_zeros() as usize / 8;
            }
            n += 8;
        }
        n + b[n..].iter().take_while(|c| c.is_ascii_digit()).count()
    }

    /// Skips a string whose opening quote was just read, checking its escapes.
    fn skip_string(&mut self) -> Result<()> {
        loop {
            let run = self.string_run()?;
            self.at += run;
            if self.bytes[self.at] == b'"' {
                self.at += 1;
                return Ok(());
            }
            self.at += 1;
            match self.peek().ok_or(Unreadable)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    self.at += 1;
                    self.hex4()?;
                }
                _ => return Err(Unreadable),
            }
        }
    }
}

/// A word whose bytes are each `x` (for the word-wide byte tests here and in the
/// export reader's uuid parse).
pub(crate) const fn each_byte(x: u8) -> u64 {
    0x0101_0101_0101_0101 * x as u64
}

/// The first eight bytes, as one word (the first byte lowest).
pub(crate) fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("eight bytes"))
}

/// The high bit of each byte of `w` that is an ASCII digit (`'0'..='9'`): at least
/// 0x30 and not at least 0x3A, each an addition whose high bit says "at least". No
/// addition carries out of a digit, so the bits are exact for every byte up to the
/// first that is no digit (and for all of them when no byte is past ASCII); a byte
/// past ASCII may carry into the next (wrapping, out of the top).
pub(crate) fn digit_bytes(w: u64) -> u64 {
    let at_least_0 = w.wrapping_add(each_byte(0x80 - b'0'));
    let at_least_colon = w.wrapping_add(each_byte(0x80 - b'9' - 1));
    at_least_0 & !at_least_colon & each_byte(0x80)
}

/// Whether the bytes hold a control character (below 0x20), which JSON allows in a
/// string only escaped. Sixteen bytes at a time, which the compiler makes one vector
/// compare.
fn has_control(bytes: &[u8]) -> bool {
    let blocks = bytes.chunks_exact(16);
    let tail = blocks.remainder();
    let found = blocks.fold(0u8, |found, block| {
        let block: &[u8; 16] = block.try_into().unwrap();
        found | block.iter().fold(0u8, |f, &b| f | u8::from(b < 0x20))
    });
    found != 0 || tail.iter().any(|&b| b < 0x20)
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` (the
/// tests' reference for `Scanner::skip_scalar`).
#[cfg(test)]
fn is_json_number(b: &[u8]) -> bool {
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(json: &str) -> Result<(Option<String>, Option<String>)> {
        extract(json, "organization")
            .map(|f| (f.org.map(|o| o.into_owned()), f.url.map(|u| u.into_owned())))
    }

    fn some(org: &str, url: &str) -> Result<(Option<String>, Option<String>)> {
        Ok((Some(org.into()), Some(url.into())))
    }

    #[test]
    fn every_quote_and_backslash_is_marked_and_each_run_ends_where_memchr2_finds() {
        // Every length past two 64-byte words, with a quote, a backslash, both, or
        // neither at every place, among bytes that differ from them by one bit
        // (0x23, 0x5D, 0xA2, 0xDC) or are any other byte.
        let fillers = [b'a', 0x23, 0x5D, 0xA2, 0xDC, 0x00, 0xFF, 0x80];
        let mut specials = Vec::new();
        for len in 0..140 {
            for &filler in &fillers {
                for at in 0..len.max(1) {
                    for (first, second) in [(b'"', None), (b'\\', None), (b'"', Some(b'\\'))] {
                        let mut bytes = vec![filler; len];
                        if let Some(b) = bytes.get_mut(at) {
                            *b = first;
                        }
                        if let (Some(second), Some(next)) = (second, bytes.get_mut(at + 1)) {
                            *next = second;
                        }
                        // A near miss (one bit off the byte looked for) just before it.
                        if at >= 1 && at < len {
                            bytes[at - 1] = first ^ 0x01;
                        }
                        let marks = mark_specials(&bytes, &mut specials);
                        assert_eq!(marks.controls, bytes.iter().any(|&b| b < 0x20));
                        assert_eq!(marks.past_ascii, bytes.iter().any(|&b| b >= 0x80));
                        assert_eq!(specials.len(), len.div_ceil(64));
                        for from in 0..=len {
                            let s = Scanner {
                                bytes: &bytes,
                                at: from,
                                depth: 0,
                                controls: false,
                                specials: &specials,
                            };
                            let want = memchr::memchr2(b'"', b'\\', &bytes[from..]);
                            assert_eq!(
                                s.string_run().ok(),
                                want,
                                "{len} x {filler:#x}, {at}, {from}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_control_byte_is_found_at_any_place_and_only_below_0x20() {
        for len in 0..40 {
            for filler in [b'a', 0x20, 0x7F, 0x80, 0xFF] {
                let plain = vec![filler; len];
                assert!(!has_control(&plain), "{len} x {filler:#x}");
                for at in 0..len {
                    for (byte, control) in [(0x00, true), (0x1F, true), (0x20, false)] {
                        let mut bytes = plain.clone();
                        bytes[at] = byte;
                        assert_eq!(has_control(&bytes), control, "{len}: {byte:#x} at {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_are_read_as_their_text_and_bytes_that_are_not_utf8_are_no_text() {
        for json in [
            r#"{"$groups":{"organization":"org-é"},"$current_url":"/ü\u00e9"}"#,
            r#"{"$groups":{"organization":"o"},"t":"ascii only"}"#,
            r#"{"t":"é", bad"#,
        ] {
            let of_text = |f: Found<'_>| {
                let bytes = |v: Cow<'_, str>| v.as_bytes().to_vec();
                (f.org.map(bytes), f.url.map(bytes))
            };
            let of_bytes =
                |f: Found<'_, [u8]>| (f.org.map(Cow::into_owned), f.url.map(Cow::into_owned));
            assert_eq!(
                extract_bytes(json.as_bytes(), "organization")
                    .unwrap()
                    .map(of_bytes),
                extract(json, "organization").map(of_text),
                "{json}"
            );
        }
        assert_eq!(
            extract_bytes("{\"$current_url\":\"/é\"}".as_bytes(), "organization")
                .unwrap()
                .unwrap()
                .url
                .as_deref(),
            Some("/é".as_bytes())
        );
        // A lone continuation byte, a cut two-byte sequence, an overlong `/`.
        for bad in [
            &b"{\"a\":\"\x80\"}"[..],
            b"{\"a\":\"\xC3\"}",
            b"{\"a\":\"\xC0\xAF\"}",
        ] {
            assert!(extract_bytes(bad, "organization").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scalars_are_skipped_by_json_grammar_whatever_follows() {
        // Tokens of every shape near the grammar's edges, with digit runs of every
        // length across the eight-byte steps, each followed by the end of the text,
        // a comma, or bytes a token may not end on: skipped exactly when the whole
        // token is a number or literal, and then to its end.
        let mut tokens: Vec<String> = [
            "true", "false", "null", "tru", "nul", "0", "-0", "01", "-", "1.", ".5", "1e", "1e+",
            "1E-7", "-0.5e+3", "0x1F", "1.5.3", "12abc", "truex", "+1", "1e5e5",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        for len in 1..20 {
            let run: String = (0..len).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
            tokens.push(run.clone());
            tokens.push(format!("-{run}.{run}e-{run}"));
            tokens.push(format!("{run}.{run}"));
            tokens.push(format!("{run}é"));
        }
        for token in &tokens {
            for after in ["", ",", "}", "a", ".", "é", "0"] {
                let text = format!("{token}{after}");
                let mut s = Scanner {
                    bytes: text.as_bytes(),
                    at: 0,
                    depth: 0,
                    controls: false,
                    specials: &[],
                };
                let whole = format!("{{\"a\":{token}{after}}}");
                let readable = get(&whole).is_ok();
                let grammatical = |t: &str| {
                    matches!(t, "true" | "false" | "null") || is_json_number(t.as_bytes())
                };
                let skipped = s.skip_scalar().is_ok();
                if grammatical(token) && (after.is_empty() || after == "," || after == "}") {
                    assert!(skipped, "{text}");
                    assert_eq!(s.at, token.len(), "{text}");
                }
                // A whole text reads exactly when the token with what follows it is
                // one number or literal.
                assert_eq!(readable, grammatical(&text), "{whole}");
            }
        }
    }

    #[test]
    fn reads_the_two_properties_in_any_order_and_spacing() {
        let a = r#"{"$current_url":"https://x.io/docs","$groups":{"organization":"org-1"}}"#;
        let b = "{ \"$groups\" : {\n \"project\": \"p\", \"organization\" : \"org-1\" } ,\t\"$current_url\": \"https://x.io/docs\" }";
        assert_eq!(get(a), some("org-1", "https://x.io/docs"));
        assert_eq!(get(b), some("org-1", "https://x.io/docs"));
    }

    #[test]
    fn escapes_are_decoded_in_keys_and_values() {
        let json = r#"{"\u0024groups":{"organi\u007aation":"o\"1\\Ω\ud83d\ude00"},"$current_url":"\/docs\u00e9"}"#;
        assert_eq!(get(json), some("o\"1\\Ω😀", "/docsé"));
        // A quote inside a skipped string does not end it.
        let json = r#"{"title":"say \"$groups\": {","$groups":{"organization":"o"}}"#;
        assert_eq!(get(json), Ok((Some("o".into()), None)));
    }

    #[test]
    fn keys_that_only_look_alike_and_nested_keys_are_other_keys() {
        let json = r#"{"$groups_extra":{"organization":"no"},"x":{"$current_url":"no","$groups":{"organization":"no"}},"$current_url_2":"no","arr":[{"$groups":{"organization":"no"}}]}"#;
        assert_eq!(get(json), Ok((None, None)));
        let json = r#"{"$groups":{"organization_id":"no","org":"no"}}"#;
        assert_eq!(get(json), Ok((None, None)));
    }

    #[test]
    fn absent_null_and_non_string_values() {
        assert_eq!(get("{}"), Ok((None, None)));
        assert_eq!(
            get(r#"{"$groups":null,"$current_url":null}"#),
            Ok((None, None))
        );
        assert_eq!(
            get(r#"{"$groups":{"organization":42}}"#),
            Ok((Some("42".into()), None))
        );
        assert_eq!(
            get(r#"{"$groups":{"organization":{"id":"o"}}}"#),
            Ok((None, None))
        );
        assert_eq!(get(r#"{"$groups":["organization"]}"#), Ok((None, None)));
        // Another group type key.
        assert_eq!(
            extract(
                r#"{"$groups":{"organization":"a","company":"c"}}"#,
                "company"
            )
            .unwrap()
            .org
            .as_deref(),
            Some("c")
        );
        // The last of a repeated key counts.
        assert_eq!(
            get(r#"{"$current_url":"a","$current_url":"b"}"#),
            Ok((None, Some("b".into())))
        );
    }

    #[test]
    fn text_that_is_not_one_json_object_is_unreadable() {
        for bad in [
            "",
            "null",
            "[]",
            "\"x\"",
            "{",
            "{\"a\":1",
            "{\"a\" 1}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":\"unterminated}",
            "{\"a\":\"bad \\q escape\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":[1,2}",
            "{\"a\":{\"b\":1]}",
            "{\"a\":1} trailing",
            "{\"a\":1}{}",
            "{a:1}",
            "{\"$groups\":{\"organization\":\"o\"}",
            // Raw control characters inside strings: in a kept value, a compared
            // key, a skipped value (before and after an escape) and a nested key.
            "{\"$current_url\":\"a\tb\"}",
            "{\"$groups\":{\"organization\":\"o\\n\u{1}\"}}",
            "{\"$cur\nrent_url\":\"x\"}",
            "{\"a\":\"x\ny\"}",
            "{\"a\":\"\\\"x\ry\"}",
            "{\"x\":{\"k\u{1f}\":1}}",
        ] {
            assert_eq!(get(bad), Err(Unreadable), "{bad:?}");
        }
        assert!(get(" \n{ } \t").is_ok());
        // A lone surrogate is valid JSON grammar: it decodes to U+FFFD, in keys and
        // values alike, and a skipped one is skipped.
        assert_eq!(get("{\"a\":\"\\ud800\"}"), Ok((None, None)));
        assert_eq!(
            get("{\"$current_url\":\"x\\ud800y\\udc00\"}"),
            Ok((None, Some("x\u{FFFD}y\u{FFFD}".into())))
        );
        assert_eq!(
            get("{\"$groups\":{\"organization\":\"o\"},\"x\":{\"\\ud800\":1}}"),
            Ok((Some("o".into()), None))
        );
        // Numbers and literals follow JSON's grammar.
        for bad in [
            "{\"a\":12abc}",
            "{\"a\":-}",
            "{\"a\":0x1F}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":tru}",
        ] {
            assert_eq!(get(bad), Err(Unreadable), "{bad:?}");
        }
        assert!(get("{\"a\":[-0.5e+3,1E2,0,true,false,null]}").is_ok());
        // A byte past ASCII within a word of a number's first digit.
        assert_eq!(get("{\"a\":1,\"bcdeé\":0}"), Ok((None, None)));
        assert_eq!(get("{\"a\":1é}"), Err(Unreadable));
        // Nesting beyond 128 levels is unreadable, not a stack overflow.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(get(&deep), Err(Unreadable));
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(get(&ok).is_ok());
    }

    /// A control character put at every place of a valid text: readable exactly when
    /// serde_json reads the result as an object (whitespace between tokens is
    /// allowed; inside a string, where it must be escaped, nothing is).
    #[test]
    fn control_characters_agree_with_a_full_json_parser() {
        let text =
            r#"{"$groups":{"organization":"o-1","x":[1,"\t"]},"$current_url":"/a b","k":null}"#;
        for at in 0..=text.len() {
            for control in ['\t', '\n', '\r', '\u{1}', '\u{1f}'] {
                let mut t = text.to_string();
                t.insert(at, control);
                let strict =
                    serde_json::from_str::<serde_json::Value>(&t).is_ok_and(|v| v.is_object());
                assert_eq!(get(&t).is_ok(), strict, "{t:?}");
            }
        }
    }

    /// Against serde_json on generated objects: nested values, the two keys and
    /// their look-alikes at every depth, escapes, unicode, compact and pretty.
    #[test]
    fn agrees_with_a_full_json_parser() {
        use serde_json::{json, Value};
        let mut state = 0x2545F4914F6CDD1Du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let keys = [
            "$groups",
            "$current_url",
            "$groups_extra",
            "organization",
            "$current_urlx",
            "a\"b",
            "é\\",
            "x",
        ];
        let strings = ["org-1", "h\"t\\t/p\n", "😀 é", "", "\u{1}"];
        fn value(
            next: &mut impl FnMut(u64) -> u64,
            depth: u32,
            keys: &[&str],
            strings: &[&str],
        ) -> Value {
            match next(if depth > 2 { 4 } else { 6 }) {
                0 => Value::Null,
                1 => json!(next(1000) as f64 / 8.0),
                2 | 3 => Value::String(strings[next(strings.len() as u64) as usize].into()),
                4 => Value::Array(
                    (0..next(3))
                        .map(|_| value(next, depth + 1, keys, strings))
                        .collect(),
                ),
                _ => Value::Object(
                    (0..next(4))
                        .map(|_| {
                            let k = keys[next(keys.len() as u64) as usize].to_string();
                            (k, value(next, depth + 1, keys, strings))
                        })
                        .collect(),
                ),
            }
        }
        for i in 0..3000 {
            let mut object = serde_json::Map::new();
            for _ in 0..next(5) {
                let k = keys[next(keys.len() as u64) as usize].to_string();
                object.insert(k, value(&mut next, 1, &keys, &strings));
            }
            let v = Value::Object(object);
            let want_org = match v.get("$groups").and_then(|g| g.get("organization")) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let want_url = v
                .get("$current_url")
                .and_then(Value::as_str)
                .map(str::to_string);
            let text = if i % 2 == 0 {
                serde_json::to_string(&v).unwrap()
            } else {
                serde_json::to_string_pretty(&v).unwrap()
            };
            assert_eq!(get(&text), Ok((want_org, want_url)), "{text}");
        }
    }
}
