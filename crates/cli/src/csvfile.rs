//! Reading the CSV files users hand in, so that the line of each row in what they are told is the
//! line their editor shows.
//!
//! The csv crate (1.4) gives each record the line it was at when it began to look for it: before
//! the blank lines it then skips, and, in a file ending its lines with `\r\n` (Excel's on
//! Windows, most exports from offices), before the `\n` of the line ending in front of it, which it
//! counts only once the next record has begun (rust-csv issue 395, open). So a row after a blank
//! line, and every row of a `\r\n` file, was reported a line early, and every row of a file ending
//! lines with `\r` alone on line 1. [`Rows`] counts instead from where a record ends, which the
//! crate knows exactly, less the line breaks inside its quoted fields; [`LineEnds`] hands the
//! crate every line ending as a `\n`, the only byte it counts. Inside a quoted field that turns a
//! `\r` into a `\n`; every field of the files read here refuses both as control characters, so
//! what is accepted does not change.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

/// The rows of a CSV file with a header, each with the line it begins on.
pub struct Rows<R> {
    rdr: csv::Reader<LineEnds<R>>,
    /// The row last read; its buffers serve every row.
    rec: csv::StringRecord,
}

/// A file whose first bytes were read to look at its header line, then handed on first; for
/// UTF-16 text, decoded to UTF-8 first.
type Peeked = Box<dyn Read + Send>;

impl Rows<Peeked> {
    /// Opens `path`, its fields separated as its header line is (see [`separator`]). The bytes
    /// looked at are kept rather than read again, so a pipe (`<(…)`, `/dev/stdin`) serves too.
    /// UTF-16 text with its byte-order mark (Excel's "Unicode Text", the one way older Excel
    /// versions save Hangul and Cyrillic together) is read as the UTF-8 it is decoded to.
    pub fn open(path: &Path) -> Result<Self> {
        let cannot = || format!("cannot read {}", path.display());
        let f = std::fs::File::open(path).with_context(cannot)?;
        let (mut start, rest) = peek(f).with_context(cannot)?;
        let utf16 = match start.get(..2) {
            Some([0xff, 0xfe]) => Some(false),
            Some([0xfe, 0xff]) => Some(true),
            _ => None,
        };
        let rest: Peeked = match utf16 {
            Some(big_endian) => {
                let undecoded = std::io::Cursor::new(start.split_off(2)).chain(rest);
                let decoded;
                (start, decoded) = peek(Utf16::new(undecoded, big_endian)).with_context(cannot)?;
                Box::new(decoded)
            }
            None => Box::new(rest),
        };
        // The byte-order mark Windows editors and Excel start UTF-8 with is no part of the
        // first column's name.
        if start.starts_with(BOM) {
            start.drain(..BOM.len());
        }
        let sep = separator(&start);
        Ok(Rows::new(
            Box::new(std::io::Cursor::new(start).chain(rest)),
            sep,
        ))
    }
}

/// Reads the start of `input` up to its first line that is not blank (the header, whose
/// separator it tells), or [`HEADER_PEEK`] bytes; the bytes read and the rest of `input`.
fn peek<R: Read>(mut input: R) -> std::io::Result<(Vec<u8>, R)> {
    let mut start = Vec::new();
    let mut chunk = [0; HEADER_PEEK];
    while start.len() < HEADER_PEEK && !holds_a_line(&start) {
        match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => start.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((start, input))
}

/// Reads UTF-16 text (after its byte-order mark) as UTF-8. The decoding is std's
/// [`char::decode_utf16`]; this only feeds it whole code units from a reader, holding back an
/// odd last byte or a leading surrogate until the rest of it comes. No crate for text
/// encodings is needed for the one encoding besides UTF-8 a spreadsheet writes Hangul in.
pub struct Utf16<R> {
    inner: R,
    big_endian: bool,
    /// Bytes read and not yet decoded: an odd byte, or a leading surrogate awaiting its pair.
    undecoded: Vec<u8>,
    /// UTF-8 decoded and not yet handed on, from `handed`.
    decoded: Vec<u8>,
    handed: usize,
    /// Characters decoded so far, to say where text that is not UTF-16 is.
    chars: u64,
    /// No more is read from `inner`: it ended, failed, or what it gave is not UTF-16.
    ended: bool,
    /// Why the text is not UTF-16, told once what was decoded before it has been handed on, so
    /// that the error falls on the row it is in; the text ends there.
    bad: Option<std::io::Error>,
}

impl<R> Utf16<R> {
    pub fn new(inner: R, big_endian: bool) -> Self {
        Self {
            inner,
            big_endian,
            undecoded: Vec::new(),
            decoded: Vec::new(),
            handed: 0,
            chars: 0,
            ended: false,
            bad: None,
        }
    }

    fn not_utf16(&mut self, why: &str) {
        self.ended = true;
        self.bad = Some(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the file is not UTF-16 text: {why} after its first {} characters",
                self.chars
            ),
        ));
    }
}

impl<R: Read> Utf16<R> {
    /// Reads and decodes the next piece of the input into `decoded`.
    fn decode_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0; 8192];
        let n = loop {
            match self.inner.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.ended = true;
                    return Err(e);
                }
                Ok(n) => break n,
            }
        };
        if n == 0 {
            self.ended = true;
            if !self.undecoded.is_empty() {
                self.not_utf16("it ends inside a character");
            }
            return Ok(());
        }
        self.undecoded
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        let big_endian = self.big_endian;
        let unit = |pair: &[u8]| match (pair, big_endian) {
            ([a, b], false) => u16::from_le_bytes([*a, *b]),
            ([a, b], true) => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        let mut whole = self.undecoded.len() / 2;
        let last = self.undecoded.get(whole.saturating_sub(1) * 2..whole * 2);
        if last.is_some_and(|pair| (0xd800..0xdc00).contains(&unit(pair))) {
            whole -= 1;
        }
        self.decoded.clear();
        self.handed = 0;
        let units = self.undecoded.get(..whole * 2).unwrap_or_default();
        let mut lone = false;
        for c in char::decode_utf16(units.chunks_exact(2).map(unit)) {
            let Ok(c) = c else {
                lone = true;
                break;
            };
            let mut utf8 = [0; 4];
            self.decoded
                .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            self.chars += 1;
        }
        self.undecoded.drain(..whole * 2);
        if lone {
            self.not_utf16("a lone surrogate");
        }
        Ok(())
    }
}

impl<R: Read> Read for Utf16<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.handed == self.decoded.len() && !self.ended && !buf.is_empty() {
            self.decode_more()?;
        }
        if self.handed == self.decoded.len() {
            return match self.bad.take() {
                Some(e) => Err(e),
                None => Ok(0),
            };
        }
        let ready = self.decoded.get(self.handed..).unwrap_or_default();
        let n = ready.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), ready.get(..n)) {
            to.copy_from_slice(from);
        }
        self.handed += n;
        Ok(n)
    }
}

/// U+FEFF in UTF-8.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Bytes of a file read at most to find its header line's separator: far more than any header.
const HEADER_PEEK: usize = 4096;

fn is_break(b: &u8) -> bool {
    matches!(b, b'\n' | b'\r')
}

/// Whether `bytes` hold a whole line that is not blank (the header: the csv crate skips blank
/// lines before it).
fn holds_a_line(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .position(|b| !is_break(b))
        .and_then(|first| bytes.get(first..))
        .is_some_and(|rest| rest.iter().any(is_break))
}

/// The byte separating the fields of a file whose first line that is not blank is `start`'s:
/// a comma, or, in a header without one, a semicolon (what Excel writes for "CSV" where a comma
/// is the decimal mark, as in Ukraine, Russia and much of Europe) or a tab. The headers read
/// here are names without any of the three, so the header tells which it is.
pub fn separator(start: &[u8]) -> u8 {
    let line = start
        .split(is_break)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    [b',', b';', b'\t']
        .into_iter()
        .find(|sep| line.contains(sep))
        .unwrap_or(b',')
}

impl<R: Read> Rows<R> {
    pub fn new(input: R, separator: u8) -> Self {
        Self {
            rdr: csv::ReaderBuilder::new()
                .has_headers(true)
                .delimiter(separator)
                .from_reader(LineEnds::new(input)),
            rec: csv::StringRecord::new(),
        }
    }

    /// The header and the line it is on (after any blank lines), or why it cannot serve as one.
    pub fn headers(&mut self) -> Result<(u64, &csv::StringRecord)> {
        let read = self
            .rdr
            .headers()
            .map(|h| (h.is_empty(), breaks(h.as_byte_record())));
        let line = self.line_of_last(read.as_ref().map_or(0, |(_, b)| *b));
        match read {
            Ok((true, _)) => anyhow::bail!("the file is empty: its first line must be the header"),
            Ok(_) => Ok((line, self.rdr.headers()?)),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => anyhow::bail!(
                "line {line}: the header is not UTF-8 text; save the file as UTF-8 (in Excel: \
                 \"CSV UTF-8\")"
            ),
            Err(e) => anyhow::bail!("line {line}: cannot read the header: {e}"),
        }
    }

    /// The line the record just read begins on, given the line breaks inside its fields.
    fn line_of_last(&self, breaks: usize) -> u64 {
        let end = self.rdr.position().byte();
        let after = self.rdr.position().line();
        // A record ending at the end of the file has no line break of its own to count.
        let ended = if self.rdr.get_ref().ends_without_newline_at(end) {
            after
        } else {
            after.saturating_sub(1)
        };
        ended.saturating_sub(breaks as u64).max(1)
    }

    /// The next row and the line it begins on, or why it cannot be read (a row of another
    /// number of fields than the header, bytes that are not UTF-8); `None` at the end.
    pub fn next_row(&mut self) -> Option<(u64, Result<&csv::StringRecord, String>)> {
        // Read as bytes and checked here, so that a row that is not UTF-8 still has its line.
        let mut bytes = std::mem::take(&mut self.rec).into_byte_record();
        let read = self.rdr.read_byte_record(&mut bytes);
        if matches!(read, Ok(false)) {
            return None;
        }
        let line = self.line_of_last(breaks(&bytes));
        let problem = match read {
            Ok(_) => None,
            Err(e) => match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => Some(format!(
                    "has {len} {} where the header has {expected_len}",
                    if *len == 1 { "field" } else { "fields" }
                )),
                _ => Some(e.to_string()),
            },
        };
        let checked = match csv::StringRecord::from_byte_record(bytes) {
            Ok(rec) => {
                self.rec = rec;
                problem.map_or(Ok(&self.rec), Err)
            }
            Err(e) => {
                let field = e.utf8_error().field();
                let at = e.utf8_error().valid_up_to();
                let column = match self.rdr.headers().ok().and_then(|h| h.get(field)) {
                    Some(name) => format!("column {name:?}"),
                    None => format!("field {}", field + 1),
                };
                self.rec = csv::StringRecord::new();
                Err(problem.unwrap_or(format!(
                    "{column} is not UTF-8 text (a bad byte after its first {at} bytes); \
                     save the file as UTF-8"
                )))
            }
        };
        Some((line, checked))
    }
}

/// Line breaks inside the fields of a record (in quoted fields).
fn breaks(rec: &csv::ByteRecord) -> usize {
    rec.as_slice().iter().filter(|b| **b == b'\n').count()
}

/// Reads `inner` with `\r\n` and a lone `\r` each turned into one `\n`.
pub struct LineEnds<R> {
    inner: R,
    /// The last byte read was a `\r`: a `\n` right after it belongs to the same line ending,
    /// even when it comes in the next read.
    after_cr: bool,
    /// Bytes handed on so far, and the last of them.
    given: u64,
    last: Option<u8>,
    /// The inner reader has said it is at its end.
    done: bool,
}

impl<R> LineEnds<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            after_cr: false,
            given: 0,
            last: None,
            done: false,
        }
    }

    /// Whether `offset` (of the bytes handed on) is the end of the input and the input does not
    /// end with a line break.
    fn ends_without_newline_at(&self, offset: u64) -> bool {
        self.done && offset == self.given && self.last != Some(b'\n')
    }
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                self.done = !buf.is_empty();
                return Ok(0);
            }
            let Some(got) = buf.get_mut(..n) else {
                return Err(std::io::Error::other(
                    "a read said it gave more than it could",
                ));
            };
            let kept = if !self.after_cr && !got.contains(&b'\r') {
                // Most files have no `\r` at all: nothing to move.
                n
            } else {
                let mut kept = 0;
                for i in 0..n {
                    let Some(&b) = got.get(i) else { break };
                    let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
                    if b == b'\n' && after_cr {
                        continue;
                    }
                    if let Some(slot) = got.get_mut(kept) {
                        *slot = if b == b'\r' { b'\n' } else { b };
                    }
                    kept += 1;
                }
                kept
            };
            // A read that held only the `\n` of a `\r\n` gives nothing: read on rather than
            // return 0, which would say the input ended.
            if kept > 0 {
                self.given += kept as u64;
                self.last = got.get(kept - 1).copied();
                return Ok(kept);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes `step` at a time, so that line endings fall across reads.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            let (now, rest) = self.bytes.split_at(n);
            buf[..n].copy_from_slice(now);
            self.bytes = rest;
            Ok(n)
        }
    }

    fn through(bytes: &[u8], step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        LineEnds::new(Trickle { bytes, step })
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_line_ending_becomes_one_newline_however_the_reads_fall() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"a,b\r\nc,d\r\n", b"a,b\nc,d\n"),
            (b"a,b\rc,d\r", b"a,b\nc,d\n"),
            (b"a,b\nc,d\n", b"a,b\nc,d\n"),
            (b"a\r\n\r\nb\n\rc", b"a\n\nb\n\nc"),
            (b"\r\n", b"\n"),
            (b"\n\r\n\r", b"\n\n\n"),
        ];
        for (input, want) in cases {
            for step in [1, 2, 3, 64] {
                assert_eq!(
                    through(input, step),
                    want,
                    "{:?} read {step} bytes at a time",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    fn rows(text: &[u8], step: usize) -> Vec<(u64, Result<Vec<String>, String>)> {
        let mut rows = Rows::new(Trickle { bytes: text, step }, b',');
        let mut out = Vec::new();
        while let Some((line, row)) = rows.next_row() {
            out.push((line, row.map(|r| r.iter().map(str::to_string).collect())));
        }
        out
    }

    #[test]
    fn rows_are_numbered_by_the_lines_of_the_file() {
        // Blank lines, a quoted field over two lines, a row of too few fields, a field that
        // is not UTF-8, and a last row with or without a line break after it.
        let lines: [&[u8]; 9] = [
            b"id,name", b"1,a", b"", b"", b"2,\"b", b"b\"", b"3", b"4,\xff", b"5,c",
        ];
        for (ending, name) in [(&b"\n"[..], "LF"), (b"\r\n", "CRLF"), (b"\r", "CR")] {
            for last in [&b""[..], ending] {
                let mut text = lines.join(ending);
                text.extend_from_slice(last);
                for step in [1, 5, 4096] {
                    let got = rows(&text, step);
                    let numbers: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
                    let what = format!("{name}, {step} bytes a read, {last:?} at the end");
                    assert_eq!(numbers, [2, 5, 7, 8, 9], "{what}");
                    assert_eq!(got[1].1, Ok(vec!["2".into(), "b\nb".into()]), "{what}");
                    let short = got[2].1.as_ref().unwrap_err();
                    assert!(
                        short.contains("has 1 field where the header has 2"),
                        "{short}"
                    );
                    let bad = got[3].1.as_ref().unwrap_err();
                    assert!(bad.contains("column \"name\" is not UTF-8"), "{bad}");
                    assert_eq!(got[4].1, Ok(vec!["5".into(), "c".into()]), "{what}");
                }
            }
        }
    }

    #[test]
    fn the_header_line_tells_the_separator() {
        assert_eq!(separator(b"id,name\n1;2\n"), b',');
        assert_eq!(separator(b"\xef\xbb\xbfid;name\r\n1,5;a\r\n"), b';');
        assert_eq!(separator(b"id\tname\r1;2"), b'\t');
        assert_eq!(separator(b"id\n1,2"), b',');
        assert_eq!(separator(b""), b',');
        assert_eq!(separator(b"\r\n\r\nid;name\r\n"), b';');
        assert!(!holds_a_line(b"\r\n\nid;na") && holds_a_line(b"\r\n\nid;name\n"));
        let text = b"id;name\r\n1;\"Kim, Chol\"\r\n";
        let mut rows = Rows::new(&text[..], separator(text));
        let (line, row) = rows.next_row().unwrap();
        assert_eq!((line, row.unwrap().get(1)), (2, Some("Kim, Chol")));
    }

    #[test]
    fn a_header_that_cannot_be_one_says_why() {
        let header = |text: &[u8]| {
            Rows::new(text, b',')
                .headers()
                .map(|(line, h)| (line, h.len()))
                .map_err(|e| e.to_string())
        };
        assert_eq!(header(b"id,name\n"), Ok((1, 2)));
        assert_eq!(header(b"\r\n\r\nid,name"), Ok((3, 2)));
        assert!(header(b"").unwrap_err().contains("the file is empty"));
        assert!(
            header(b"i\xe9,name\n")
                .unwrap_err()
                .contains("header is not UTF-8")
        );
    }

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let order = |u: u16| match big_endian {
            true => u.to_be_bytes(),
            false => u.to_le_bytes(),
        };
        [0xfeff_u16]
            .into_iter()
            .chain(text.encode_utf16())
            .flat_map(order)
            .collect()
    }

    #[test]
    fn utf16_text_is_read_as_the_utf8_it_encodes_however_the_reads_fall() {
        // Hangul, Cyrillic, and a character outside the Basic Multilingual Plane (a
        // surrogate pair, split across reads when they come a byte at a time).
        let text = "id\tname\r\n1\t리한검|Ли Хан Гом\r\n2\t\u{1d11e}x\r\n";
        for big_endian in [false, true] {
            let bytes = utf16(text, big_endian);
            for step in [1, 3, 4096] {
                let mut out = String::new();
                let input = Trickle {
                    bytes: &bytes[2..],
                    step,
                };
                Utf16::new(input, big_endian)
                    .read_to_string(&mut out)
                    .unwrap();
                assert_eq!(out, text, "big endian {big_endian}, {step} bytes a read");
            }
        }
        // Not UTF-16: a surrogate without its pair, or half a code unit at the end.
        let mut lone: Vec<u8> = utf16("ab", false);
        lone.extend_from_slice(&0xdc00_u16.to_le_bytes());
        let mut odd = utf16("ab", false);
        odd.push(b'c');
        for (bytes, want) in [
            (lone, "a lone surrogate after its first 2"),
            (odd, "ends inside"),
        ] {
            let mut out = String::new();
            let e = Utf16::new(&bytes[2..], false)
                .read_to_string(&mut out)
                .unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    /// Gives `good`, then fails on every read.
    struct Failing<'a> {
        good: &'a [u8],
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.good.is_empty() {
                return Err(std::io::Error::other("the disk failed"));
            }
            let n = self.good.read(buf)?;
            Ok(n)
        }
    }

    /// The csv reader stops at a failed read (a file that cannot be read past some point, a
    /// pipe whose writer failed) rather than asking again for ever: the import's passes rely on
    /// it.
    #[test]
    fn a_read_that_fails_is_told_once_and_ends_the_rows() {
        let mut rows = Rows::new(
            Failing {
                good: b"id,name\n1,a\n2,b",
            },
            b',',
        );
        let (line, row) = rows.next_row().unwrap();
        assert_eq!((line, row.unwrap().get(1)), (2, Some("a")));
        let (_, row) = rows.next_row().unwrap();
        assert!(row.unwrap_err().contains("the disk failed"));
        assert!(rows.next_row().is_none(), "read on after the failure");
    }

    #[test]
    fn text_that_is_not_utf16_is_told_once_at_its_row_and_ends_there() {
        let mut bytes = utf16("id,name\n1,a\n2,b", false);
        bytes.extend_from_slice(&0xdc00_u16.to_le_bytes());
        bytes.extend(utf16("c\n3,d\n", false).into_iter().skip(2));
        let mut rows = Rows::new(Utf16::new(&bytes[2..], false), b',');
        let (line, row) = rows.next_row().unwrap();
        assert_eq!((line, row.unwrap().get(1)), (2, Some("a")));
        let (_, row) = rows.next_row().unwrap();
        let e = row.unwrap_err();
        assert!(e.contains("a lone surrogate"), "{e}");
        assert!(rows.next_row().is_none(), "read on after the error");
    }

    #[test]
    fn a_utf16_file_is_read_with_its_lines_and_separator() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("u16.txt");
        for big_endian in [false, true] {
            std::fs::write(
                &file,
                utf16("\r\nid\tname\r\n1\t김철\r\n\r\n2\tПак\r\n", big_endian),
            )
            .unwrap();
            let mut rows = Rows::open(&file).unwrap();
            let (line, header) = rows.headers().unwrap();
            assert_eq!(
                (line, header.get(0), header.get(1)),
                (2, Some("id"), Some("name"))
            );
            let (line, row) = rows.next_row().unwrap();
            assert_eq!((line, row.unwrap().get(1)), (3, Some("김철")));
            let (line, row) = rows.next_row().unwrap();
            assert_eq!((line, row.unwrap().get(1)), (5, Some("Пак")));
            assert!(rows.next_row().is_none());
        }
    }
}
