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

/// A file whose first bytes were read to look at its header line, then handed on first.
type Peeked = std::io::Chain<std::io::Cursor<Vec<u8>>, std::fs::File>;

impl Rows<Peeked> {
    /// Opens `path`, its fields separated as its header line is (see [`separator`]). The bytes
    /// looked at are kept rather than read again, so a pipe (`<(…)`, `/dev/stdin`) serves too.
    pub fn open(path: &Path) -> Result<Self> {
        let cannot = || format!("cannot open {}", path.display());
        let mut f = std::fs::File::open(path).with_context(cannot)?;
        let mut start = Vec::new();
        let mut chunk = [0; HEADER_PEEK];
        while start.len() < HEADER_PEEK && !holds_a_line(&start) {
            match f.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => start.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).with_context(cannot),
            }
        }
        if start.starts_with(&[0xff, 0xfe]) || start.starts_with(&[0xfe, 0xff]) {
            anyhow::bail!(
                "{} is UTF-16 text (as Excel saves \"Unicode Text\"); save it as UTF-8 \
                 (in Excel: \"CSV UTF-8\")",
                path.display()
            );
        }
        // The byte-order mark Windows editors and Excel start UTF-8 with is no part of the
        // first column's name.
        if start.starts_with(BOM) {
            start.drain(..BOM.len());
        }
        let sep = separator(&start);
        Ok(Rows::new(std::io::Cursor::new(start).chain(f), sep))
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
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("u16.csv");
        let utf16: Vec<u8> = [0xfeff_u16]
            .into_iter()
            .chain("id\tname\r\n".encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect();
        std::fs::write(&file, utf16).unwrap();
        let e = Rows::open(&file).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("is UTF-16 text"), "{e}");
    }
}
