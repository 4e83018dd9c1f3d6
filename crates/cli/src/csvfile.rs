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
use encoding_rs::Encoding;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The rows of a CSV file with a header, each with the line it begins on.
pub struct Rows<R> {
    rdr: csv::Reader<LineEnds<R>>,
    /// The row last read; its buffers serve every row.
    rec: csv::StringRecord,
    /// What to do with text that is not UTF-8 has been said (at the first such row: a file in
    /// another encoding has it in every row).
    told_not_utf8: bool,
    /// The option that names this file's encoding, for what to do when it is not UTF-8.
    option: &'static str,
    /// The line at which the file could not be read on (a failed read, bytes that are no
    /// character in its encoding): the rows after it were never read.
    stopped_at: Option<u64>,
    /// Bytes read of the file itself, before any decoding (see [`Rows::bytes_read`]).
    raw: Arc<AtomicU64>,
}

/// How much of a file [`Rows`] have read.
pub struct ReadSoFar(Arc<AtomicU64>);

impl ReadSoFar {
    /// Bytes of the file read so far, counted before any decoding so that they compare with
    /// its size (they run ahead of the rows by what is buffered); 0 for rows not read from a
    /// file opened by [`Rows::open`].
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A reader that counts the bytes read through it.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A file whose first bytes were read to look at its header line, then handed on first; for
/// text in another encoding than UTF-8, decoded to UTF-8 first.
type Peeked = Box<dyn Read + Send>;

/// The encoding named by `label` (a WHATWG label: `euc-kr`, `windows-1251`, `koi8-u`,
/// `utf-16le`, …), for `--encoding`.
pub fn encoding(label: &str) -> Result<&'static Encoding, String> {
    let label = label.trim();
    // Windows's name for the code page of Korean Windows, which the standard calls
    // windows-949 (its cp1251 and the like it knows).
    let known = match label.to_ascii_lowercase().as_str() {
        "cp949" | "uhc" | "ms949" => Some(encoding_rs::EUC_KR),
        _ => Encoding::for_label(label.as_bytes()),
    };
    match known {
        // What the standard maps some labels to (iso-2022-kr, hz-gb-2312): it reads any file
        // as one error.
        Some(e) if e == encoding_rs::REPLACEMENT => {
            Err(format!("{label} cannot be read; save the file as UTF-8"))
        }
        Some(e) => Ok(e),
        None => Err(format!(
            "{label} is no encoding known here; give a label such as euc-kr (Korean Excel's \
             \"CSV\"), windows-1251 (Russian or Ukrainian Excel's), koi8-u, utf-16le or utf-8"
        )),
    }
}

/// A CSV file handed in, and the encoding it was said to be in (`--encoding`), if any.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub path: &'a Path,
    pub encoding: Option<&'static Encoding>,
    /// The option of the command that names this file's encoding (`--encoding`,
    /// `--left-encoding`…), named in what to do when the file is not in the one it was read in.
    pub option: &'static str,
}

impl Source<'_> {
    pub fn display(&self) -> std::path::Display<'_> {
        self.path.display()
    }
}

impl Rows<Peeked> {
    /// Opens `path`, its fields separated as its header line is (see [`separator`]). The bytes
    /// looked at are kept rather than read again, so a pipe (`<(…)`, `/dev/stdin`) serves too.
    ///
    /// The text is UTF-8 unless it starts with UTF-16's byte-order mark (Excel's "Unicode
    /// Text", the one way older Excel versions save Hangul and Cyrillic together) or `encoding`
    /// names another: Excel's plain "CSV" is written in the code page of the Windows it runs on
    /// (euc-kr in Korean, windows-1251 in Russian or Ukrainian). Either is read as the UTF-8 it
    /// is decoded to. A file that shows it is not in the encoding named (a byte-order mark of
    /// another, or text that reads as UTF-8) is refused, rather than read as other letters.
    pub fn open(source: Source<'_>) -> Result<Self> {
        let Source {
            path,
            encoding,
            option,
        } = source;
        let cannot = || format!("cannot read {}", path.display());
        let raw = Arc::new(AtomicU64::new(0));
        let f = Counted {
            inner: std::fs::File::open(path).with_context(cannot)?,
            read: Arc::clone(&raw),
        };
        let (mut start, rest) = peek(f, Peek::Header).with_context(cannot)?;
        let marked = match start.get(..2) {
            Some([0xff, 0xfe]) => Some(encoding_rs::UTF_16LE),
            Some([0xfe, 0xff]) => Some(encoding_rs::UTF_16BE),
            _ if start.starts_with(BOM) => Some(encoding_rs::UTF_8),
            _ => None,
        };
        let named = encoding.unwrap_or(encoding_rs::UTF_8);
        if let Some(marked) = marked
            && encoding.is_some_and(|e| e != marked)
        {
            anyhow::bail!(
                "{} begins with the byte-order mark of {}: it is not {} text; leave out {option}",
                path.display(),
                marked.name(),
                named.name()
            );
        }
        let encoding = marked.unwrap_or(named);
        let rest: Peeked = if encoding == encoding_rs::UTF_8 {
            // The byte-order mark Windows editors and Excel start UTF-8 with is no part of
            // the first column's name.
            if start.starts_with(BOM) {
                start.drain(..BOM.len());
            }
            Box::new(rest)
        } else {
            let mut rest: Peeked = Box::new(rest);
            if marked.is_none() {
                // A file in UTF-8 named another encoding would be read as other letters: a
                // single-byte code page reads any bytes as some, and even euc-kr reads much
                // UTF-8 Hangul as other syllables. Text in those encodings beyond ASCII is
                // almost never UTF-8 too, so a sample of it must not read as UTF-8.
                let (sample, more) = peek(rest, Peek::Sample(UTF8_SAMPLE)).with_context(cannot)?;
                if reads_as_utf8(&[&start[..], &sample[..]].concat()) {
                    anyhow::bail!(
                        "{} reads as UTF-8 text, not {}: leave out {option}",
                        path.display(),
                        encoding.name()
                    );
                }
                rest = Box::new(std::io::Cursor::new(sample).chain(more));
            }
            let skip = if marked.is_some() { 2 } else { 0 };
            let undecoded = std::io::Cursor::new(start.split_off(skip)).chain(rest);
            let decoded;
            (start, decoded) =
                peek(Decoded::new(undecoded, encoding), Peek::Header).with_context(cannot)?;
            Box::new(decoded)
        };
        let sep = separator(&start);
        let mut rows: Self = Rows::new(Box::new(std::io::Cursor::new(start).chain(rest)), sep);
        rows.option = option;
        rows.raw = raw;
        Ok(rows)
    }
}

/// Bytes of a file said to be in another encoding looked at to tell it is not UTF-8.
const UTF8_SAMPLE: usize = 64 * 1024;

/// Whether `sample` (the start of a file) holds letters beyond ASCII and reads as UTF-8 (but
/// for a character the sample's end cuts).
fn reads_as_utf8(sample: &[u8]) -> bool {
    !sample.is_ascii()
        && match std::str::from_utf8(sample) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
}

/// How much of a file [`peek`] reads.
#[derive(Clone, Copy)]
enum Peek {
    /// Up to its first line that is not blank (the header, whose separator it tells), or
    /// [`HEADER_PEEK`] bytes.
    Header,
    /// This many bytes, or all of a shorter file.
    Sample(usize),
}

/// Reads the start of `input` as `how` says; the bytes read and the rest of `input`.
fn peek<R: Read>(mut input: R, how: Peek) -> std::io::Result<(Vec<u8>, R)> {
    let mut start = Vec::new();
    let mut chunk = [0; HEADER_PEEK];
    let more = |start: &Vec<u8>| match how {
        Peek::Header => start.len() < HEADER_PEEK && !holds_a_line(start),
        Peek::Sample(n) => start.len() < n,
    };
    while more(&start) {
        match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => start.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((start, input))
}

/// Reads text in another encoding than UTF-8 as UTF-8, decoded by encoding_rs (the decoders
/// of the WHATWG Encoding Standard, Firefox's). Bytes that are no character in it end the text
/// with an error, told once what was decoded before them has been handed on, so that it falls
/// on the row it is in: nothing is replaced by U+FFFD and registered so.
pub struct Decoded<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    /// UTF-8 decoded and not yet handed on, from `handed`.
    decoded: Vec<u8>,
    handed: usize,
    /// Characters decoded so far, to say where text that is not in the encoding is.
    chars: u64,
    /// No more is read from `inner`: it ended, failed, or what it gave is not in the encoding.
    ended: bool,
    /// Why the text is not in the encoding, told once what was decoded before it has been
    /// handed on; the text ends there.
    bad: Option<std::io::Error>,
}

impl<R> Decoded<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            decoded: Vec::new(),
            handed: 0,
            chars: 0,
            ended: false,
            bad: None,
        }
    }
}

impl<R: Read> Decoded<R> {
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
        let last = n == 0;
        self.ended = last;
        self.decoded.clear();
        self.handed = 0;
        let mut input = chunk.get(..n).unwrap_or_default();
        loop {
            let at = self.decoded.len();
            let room = self
                .decoder
                .max_utf8_buffer_length_without_replacement(input.len())
                .unwrap_or(input.len().saturating_mul(3))
                .max(16);
            self.decoded.resize(at + room, 0);
            let out = self.decoded.get_mut(at..).unwrap_or_default();
            let (result, read, written) = self
                .decoder
                .decode_to_utf8_without_replacement(input, out, last);
            self.decoded.truncate(at + written);
            input = input.get(read..).unwrap_or_default();
            match result {
                encoding_rs::DecoderResult::InputEmpty => break,
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(..) => {
                    let why = if last && input.is_empty() {
                        "it ends inside a character"
                    } else {
                        "bytes that are no character"
                    };
                    self.count(at + written);
                    self.ended = true;
                    self.bad = Some(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "the file is not {} text: {why} after its first {} characters",
                            self.decoder.encoding().name(),
                            self.chars
                        ),
                    ));
                    return Ok(());
                }
            }
        }
        let all = self.decoded.len();
        self.count(all);
        Ok(())
    }

    /// Counts the characters decoded by this call, up to `end` of `decoded`.
    fn count(&mut self, end: usize) {
        let new = self.decoded.get(..end).unwrap_or_default();
        // Every UTF-8 character has one byte that does not continue another.
        self.chars += new.iter().filter(|b| (**b & 0xc0) != 0x80).count() as u64;
    }
}

impl<R: Read> Read for Decoded<R> {
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
/// What to do with a file that is not UTF-8, whose encoding `option` names.
fn not_utf8(option: &str) -> String {
    format!(
        "save the file as UTF-8 (in Excel: \"CSV UTF-8\"), or name the encoding it is in with \
         {option}; Excel's plain \"CSV\" is euc-kr in Korean, windows-1251 in Russian or Ukrainian"
    )
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
            told_not_utf8: false,
            option: "--encoding",
            stopped_at: None,
            raw: Arc::default(),
        }
    }

    /// How much of the file has been read, to be asked while its rows are read.
    pub fn read_so_far(&self) -> ReadSoFar {
        ReadSoFar(Arc::clone(&self.raw))
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
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                anyhow::bail!(
                    "line {line}: the header is not UTF-8 text; {}",
                    not_utf8(self.option)
                )
            }
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

    /// The line at which reading stopped before the end of the file, if it did.
    pub fn stopped_at(&self) -> Option<u64> {
        self.stopped_at
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
        let line = match &read {
            // Text past what could be read (bytes that are no character in the file's
            // encoding, a failed read) is no record: the row is the one the reader stands in.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                let line = self.rdr.position().line().max(1);
                self.stopped_at = Some(line);
                line
            }
            _ => self.line_of_last(breaks(&bytes)),
        };
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
                let what_to_do = match std::mem::replace(&mut self.told_not_utf8, true) {
                    false => format!("; {}", not_utf8(self.option)),
                    true => String::new(),
                };
                Err(problem.unwrap_or(format!(
                    "{column} is not UTF-8 text (a bad byte after its first {at} bytes){what_to_do}"
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
                let encoding = match big_endian {
                    true => encoding_rs::UTF_16BE,
                    false => encoding_rs::UTF_16LE,
                };
                Decoded::new(input, encoding)
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
            (
                lone,
                "not UTF-16LE text: bytes that are no character after its first 2",
            ),
            (odd, "ends inside a character after its first 2"),
        ] {
            let mut out = String::new();
            let e = Decoded::new(&bytes[2..], encoding_rs::UTF_16LE)
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
        let mut rows = Rows::new(Decoded::new(&bytes[2..], encoding_rs::UTF_16LE), b',');
        let (line, row) = rows.next_row().unwrap();
        assert_eq!((line, row.unwrap().get(1)), (2, Some("a")));
        let (line, row) = rows.next_row().unwrap();
        assert_eq!(line, 3);
        let e = row.unwrap_err();
        assert!(e.contains("bytes that are no character"), "{e}");
        assert!(rows.next_row().is_none(), "read on after the error");
    }

    /// Opens `bytes` as a file said to be in `encoding`.
    fn opened(bytes: &[u8], encoding: Option<&str>) -> Result<Rows<Peeked>> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("list.csv");
        std::fs::write(&file, bytes).unwrap();
        Rows::open(Source {
            path: &file,
            encoding: encoding.map(|label| super::encoding(label).unwrap()),
            option: "--encoding",
        })
    }

    /// The rows of `rows` as (line, second field), or the error of each.
    fn all(mut rows: Rows<Peeked>) -> Vec<(u64, Result<String, String>)> {
        let mut out = Vec::new();
        while let Some((line, row)) = rows.next_row() {
            out.push((line, row.map(|r| r.get(1).unwrap_or("").to_string())));
        }
        out
    }

    #[test]
    fn a_utf16_file_is_read_with_its_lines_and_separator() {
        for big_endian in [false, true] {
            let bytes = utf16("\r\nid\tname\r\n1\t김철\r\n\r\n2\tПак\r\n", big_endian);
            // Its byte-order mark says what it is: named or not, it is read the same.
            let label = if big_endian { "utf-16be" } else { "utf-16le" };
            for encoding in [None, Some(label)] {
                let mut rows = opened(&bytes, encoding).unwrap();
                let (line, header) = rows.headers().unwrap();
                assert_eq!(
                    (line, header.get(0), header.get(1)),
                    (2, Some("id"), Some("name"))
                );
                assert_eq!(all(rows), [(3, Ok("김철".into())), (5, Ok("Пак".into()))]);
            }
        }
    }

    #[test]
    fn a_file_in_a_code_page_is_read_as_the_text_it_encodes() {
        // What Excel writes as plain "CSV" on a Korean or a Russian/Ukrainian Windows.
        let korean = encoding_rs::EUC_KR
            .encode("id;name\r\n1;리한검\r\n2;박봉주\r\n")
            .0;
        let rows = all(opened(&korean, Some("euc-kr")).unwrap());
        assert_eq!(rows, [(2, Ok("리한검".into())), (3, Ok("박봉주".into()))]);
        let cyrillic = encoding_rs::WINDOWS_1251
            .encode("id,name\r\n1,Рі Хан Гом\r\n2,Пак Пон Чжу\r\n")
            .0;
        let rows = all(opened(&cyrillic, Some("cp1251")).unwrap());
        assert_eq!(
            rows,
            [(2, Ok("Рі Хан Гом".into())), (3, Ok("Пак Пон Чжу".into()))]
        );
        // Not named, each row says it is not UTF-8, and the first what to do.
        let rows = all(opened(&korean, None).unwrap());
        let e = |i: usize| rows[i].1.clone().unwrap_err();
        assert!(
            e(0).contains("not UTF-8") && e(0).contains("--encoding"),
            "{}",
            e(0)
        );
        assert!(
            e(1).contains("not UTF-8") && !e(1).contains("--encoding"),
            "{}",
            e(1)
        );
        // Bytes that are no character in the encoding named are told at their row.
        let mut bad = encoding_rs::EUC_KR
            .encode("id,name\n1,리한검\n2,")
            .0
            .into_owned();
        bad.extend_from_slice(b"\xff\xff\n3,x\n");
        let rows = all(opened(&bad, Some("euc-kr")).unwrap());
        assert_eq!(rows[0], (2, Ok("리한검".into())));
        assert_eq!(rows[1].0, 3);
        let e = rows[1].1.clone().unwrap_err();
        assert!(
            e.contains("not EUC-KR text: bytes that are no character"),
            "{e}"
        );
        assert_eq!(rows.len(), 2, "read on after the error");
    }

    #[test]
    fn a_file_that_shows_another_encoding_than_the_one_named_is_refused() {
        let refused = |bytes: &[u8], label: &str| match opened(bytes, Some(label)) {
            Ok(_) => panic!("{label}: opened"),
            Err(e) => e.to_string(),
        };
        // UTF-8 read as a code page would be other letters, and valid ones.
        let e = refused("id,name\n1,Пак\n".as_bytes(), "windows-1251");
        assert!(e.contains("reads as UTF-8 text, not windows-1251"), "{e}");
        let e = refused("id,name\n1,리한검\n".as_bytes(), "euc-kr");
        assert!(e.contains("reads as UTF-8 text, not EUC-KR"), "{e}");
        // ASCII reads the same in all of them: nothing to refuse.
        assert!(opened(b"id,name\n1,Pak\n", Some("windows-1251")).is_ok());
        let mut marked = BOM.to_vec();
        marked.extend_from_slice("id,name\n1,Пак\n".as_bytes());
        let e = refused(&marked, "koi8-u");
        assert!(
            e.contains("byte-order mark of UTF-8: it is not KOI8-U text"),
            "{e}"
        );
        let e = refused(&utf16("id,name\n", false), "utf-16be");
        assert!(e.contains("byte-order mark of UTF-16LE"), "{e}");
        // Labels: unknown, and those the standard reads as one error.
        assert!(
            super::encoding("latin-42")
                .unwrap_err()
                .contains("no encoding known")
        );
        assert!(
            super::encoding("iso-2022-kr")
                .unwrap_err()
                .contains("cannot be read")
        );
        assert_eq!(super::encoding(" CP949 ").unwrap(), encoding_rs::EUC_KR);
    }
}
