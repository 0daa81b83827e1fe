//! The `multipart/form-data` body of a browser upload (RFC 7578, RFC 2046 §5.1), read
//! incrementally up to the start of the `file` part's data.
//!
//! The parser is pure: [`FormParser::next`] looks at the front of a buffer the caller
//! fills from the body, consumes what it has used and says what it found (a field, the
//! file part's headers, the end of the form) or that it needs more. A field split across
//! any number of reads parses the same as one read in one piece. What follows the file
//! part's headers is the caller's: the file is streamed, never buffered here.

use bytes::{Buf as _, BytesMut};

use crate::s3::error::S3Error;

/// S3's answer to a body that is not valid multipart/form-data.
pub fn malformed() -> S3Error {
    S3Error::new(
        "MalformedPOSTRequest",
        http::StatusCode::BAD_REQUEST,
        "The body of your POST request is not well-formed multipart/form-data.",
    )
}

/// The boundary of a `multipart/form-data; boundary=…` Content-Type; `None` for any
/// other type or a boundary RFC 2046 does not allow (1 to 70 characters).
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media_type = params.next()?.trim();
    if !media_type.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim())
    })?;
    let value = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    (1..=70).contains(&value.len()).then(|| value.to_string())
}

/// The headers of one part that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The `name` of its Content-Disposition, as sent.
    pub name: String,
    /// The `filename`, when given.
    pub filename: Option<String>,
    /// Its Content-Type, when given.
    pub content_type: Option<String>,
}

/// What the parser found at the front of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The buffer ends before the next item does.
    NeedMore,
    /// A whole field.
    Field(Part, Vec<u8>),
    /// The headers of the part named `file` (any case); its data starts at the front
    /// of the buffer, and the parser is done.
    File(Part),
    /// The closing delimiter, with no file part before it.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (the preamble is ignored).
    Preamble {
        at_start: bool,
    },
    /// Right after a delimiter: `--` ends the form, CRLF starts a part.
    AfterDelimiter,
    Headers,
    Body(Part),
    Done,
}

/// Incremental parser of a form up to its file part.
#[derive(Debug, Clone)]
pub struct FormParser {
    /// `\r\n--BOUNDARY`: what ends every part.
    delimiter: Vec<u8>,
    state: State,
    /// How far the buffer was already searched for what the state waits for.
    searched: usize,
}

impl FormParser {
    pub fn new(boundary: &str) -> FormParser {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        FormParser {
            delimiter,
            state: State::Preamble { at_start: true },
            searched: 0,
        }
    }

    /// `\r\n--BOUNDARY`.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// The next item at the front of `buf`, consuming it; `eof` says no more bytes
    /// will come, so an unfinished item is malformed rather than incomplete.
    pub fn next(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Step, S3Error> {
        loop {
            let need_more = || {
                if eof {
                    Err(malformed())
                } else {
                    Ok(Step::NeedMore)
                }
            };
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(Step::End),
                State::Preamble { at_start } => {
                    let dash_boundary = &self.delimiter[2..];
                    if at_start {
                        if buf.len() < dash_boundary.len() && dash_boundary.starts_with(buf) {
                            self.state = State::Preamble { at_start };
                            return need_more();
                        }
                        if buf.starts_with(dash_boundary) {
                            buf.advance(dash_boundary.len());
                            self.state = State::AfterDelimiter;
                            continue;
                        }
                    }
                    match self.find(buf, &self.delimiter.clone()) {
                        Some(i) => {
                            buf.advance(i + self.delimiter.len());
                            self.state = State::AfterDelimiter;
                        }
                        None => {
                            // Drop what cannot be the start of a delimiter.
                            let keep = self.delimiter.len() - 1;
                            let drop = buf.len().saturating_sub(keep);
                            buf.advance(drop);
                            self.searched = self.searched.saturating_sub(drop);
                            self.state = State::Preamble { at_start: false };
                            return need_more();
                        }
                    }
                }
                State::AfterDelimiter => {
                    if buf.starts_with(b"--") {
                        return Ok(Step::End);
                    }
                    // Transport padding (linear white space) may precede the CRLF.
                    let pad = buf.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
                    let rest = &buf[pad..];
                    if rest.starts_with(b"\r\n") {
                        buf.advance(pad + 2);
                        self.state = State::Headers;
                    } else if rest.is_empty() || rest == b"\r" || (pad == 0 && rest == b"-") {
                        self.state = State::AfterDelimiter;
                        return need_more();
                    } else {
                        return Err(malformed());
                    }
                }
                State::Headers => {
                    // A part without headers starts with the blank line itself.
                    let end = if buf.starts_with(b"\r\n") {
                        Some(0)
                    } else {
                        self.find(buf, b"\r\n\r\n").map(|i| i + 2)
                    };
                    let Some(end) = end else {
                        self.state = State::Headers;
                        return need_more();
                    };
                    let part = parse_headers(&buf[..end])?;
                    buf.advance(end + 2);
                    self.searched = 0;
                    if part.name.eq_ignore_ascii_case("file") {
                        self.state = State::Done;
                        return Ok(Step::File(part));
                    }
                    self.state = State::Body(part);
                }
                State::Body(part) => match self.find(buf, &self.delimiter.clone()) {
                    Some(i) => {
                        let value = buf.split_to(i).to_vec();
                        buf.advance(self.delimiter.len());
                        self.searched = 0;
                        self.state = State::AfterDelimiter;
                        return Ok(Step::Field(part, value));
                    }
                    None => {
                        self.state = State::Body(part);
                        return need_more();
                    }
                },
            }
        }
    }

    /// Finds `needle` in `buf`, resuming where the last unsuccessful search stopped.
    fn find(&mut self, buf: &[u8], needle: &[u8]) -> Option<usize> {
        let from = self.searched.min(buf.len());
        let found = find(&buf[from..], needle).map(|i| i + from);
        if found.is_none() {
            self.searched = buf.len().saturating_sub(needle.len() - 1);
        } else {
            self.searched = 0;
        }
        found
    }
}

/// First position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            Some(p) => i += p,
            None => return None,
        }
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The length of the file data at the front of `rest` (the whole remaining body, read
/// into memory): up to the next delimiter, which must be followed by `--` or the CRLF
/// of a next part. Any epilogue and any parts after the file are ignored, as S3 does.
pub fn file_len_in(rest: &[u8], delimiter: &[u8]) -> Result<usize, S3Error> {
    let i = find(rest, delimiter).ok_or_else(malformed)?;
    let after = &rest[i + delimiter.len()..];
    let padded = after
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .map(|p| &after[p..]);
    if after.starts_with(b"--") || padded.is_some_and(|a| a.starts_with(b"\r\n")) {
        Ok(i)
    } else {
        Err(malformed())
    }
}

/// Reads the part headers (`Name: value` lines, folded lines joined): the
/// Content-Disposition must be `form-data` with a `name`.
fn parse_headers(block: &[u8]) -> Result<Part, S3Error> {
    let text = std::str::from_utf8(block).map_err(|_| malformed())?;
    let mut lines: Vec<String> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding (RFC 5322 §2.2.3): part of the previous header.
            let last = lines.last_mut().ok_or_else(malformed)?;
            last.push(' ');
            last.push_str(line.trim_start());
        } else {
            lines.push(line.to_string());
        }
    }
    let mut disposition = None;
    let mut content_type = None;
    for line in &lines {
        let (name, value) = line.split_once(':').ok_or_else(malformed)?;
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.to_string());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_string());
        }
    }
    let disposition = disposition.ok_or_else(malformed)?;
    let params = disposition_params(&disposition).ok_or_else(malformed)?;
    let mut name = None;
    let mut filename = None;
    for (k, v) in params {
        if k.eq_ignore_ascii_case("name") {
            name = Some(v);
        } else if k.eq_ignore_ascii_case("filename") {
            filename = Some(v);
        }
    }
    Ok(Part {
        name: name.ok_or_else(malformed)?,
        filename,
        content_type,
    })
}

/// `form-data; name="a"; filename="b"` → the parameters; `None` unless `form-data`.
fn disposition_params(value: &str) -> Option<Vec<(String, String)>> {
    let (kind, mut rest) = match value.split_once(';') {
        Some((k, r)) => (k, r),
        None => (value, ""),
    };
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return Some(out);
        }
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted string: `\"` and `\\` escape (browsers percent-encode instead).
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end?;
            (value, &quoted[end + 1..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((name.trim().to_string(), value));
        rest = remaining;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The fields, the file part and the bytes after its headers.
    pub(crate) type Parsed = (Vec<(Part, Vec<u8>)>, Option<Part>, Vec<u8>);

    /// Feeds `body` cut at `cuts` and collects every step until the file or the end;
    /// returns the fields, the file part and what is left in the buffer.
    pub(crate) fn parse_cut(
        boundary: &str,
        body: &[u8],
        cuts: &[usize],
    ) -> Result<Parsed, S3Error> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(body.len());
        let mut parser = FormParser::new(boundary);
        let mut buf = BytesMut::new();
        let mut fields = Vec::new();
        let mut fed = 0;
        let mut cuts = cuts.into_iter();
        loop {
            let eof = fed == body.len();
            match parser.next(&mut buf, eof)? {
                Step::NeedMore => {
                    let c = cuts.next().unwrap_or(body.len());
                    let c = c.max(fed);
                    buf.extend_from_slice(&body[fed..c]);
                    fed = c;
                }
                Step::Field(p, v) => fields.push((p, v)),
                Step::File(p) => {
                    buf.extend_from_slice(&body[fed..]);
                    return Ok((fields, Some(p), buf.to_vec()));
                }
                Step::End => return Ok((fields, None, buf.to_vec())),
            }
        }
    }

    const FORM: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuser/${filename}\r\n--XyZ\r\ncontent-disposition: form-data;\r\n name=\"X-Amz-Meta-Note\"\r\n\r\nline1\r\nline2\r\n--XyZ \t\r\nContent-Disposition: form-data; name=\"File\"; filename=\"a \\\"b\\\".txt\"\r\nContent-Type: text/plain\r\n\r\nDATA\r\n--XyZ--\r\n";

    #[test]
    fn boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("multipart/mixed; boundary=abc"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "a".repeat(71))),
            None
        );
    }

    #[test]
    fn fields_folding_and_file_headers_parse_at_any_cut() {
        for cut in 0..FORM.len() {
            let every_byte: Vec<usize> = (0..FORM.len()).collect();
            for cuts in [vec![cut], every_byte] {
                let (fields, file, rest) = parse_cut("XyZ", FORM, &cuts).expect("parses");
                assert_eq!(fields.len(), 2, "cut at {cut}");
                assert_eq!(fields[0].0.name, "key");
                assert_eq!(fields[0].1, b"user/${filename}");
                assert_eq!(fields[1].0.name, "X-Amz-Meta-Note", "folded header");
                assert_eq!(fields[1].1, b"line1\r\nline2");
                let file = file.expect("file part");
                assert_eq!(file.name, "File", "names are case-insensitive");
                assert_eq!(file.filename.as_deref(), Some("a \"b\".txt"));
                assert_eq!(file.content_type.as_deref(), Some("text/plain"));
                assert_eq!(rest, b"DATA\r\n--XyZ--\r\n");
                let delimiter = FormParser::new("XyZ").delimiter().to_vec();
                assert_eq!(file_len_in(&rest, &delimiter).ok(), Some(4));
            }
        }
    }

    #[test]
    fn a_form_without_a_file_ends() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--b--";
        let (fields, file, _) = parse_cut("b", body, &[7, 30]).expect("parses");
        assert_eq!(fields.len(), 1);
        assert!(file.is_none());
    }

    #[test]
    fn broken_forms_are_malformed() {
        let cases: [&[u8]; 6] = [
            // No delimiter at all.
            b"just some text",
            // A part that never ends.
            b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nvalue",
            // Garbage after the delimiter.
            b"--bX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nv\r\n--b--",
            // No Content-Disposition.
            b"--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--",
            // Not form-data.
            b"--b\r\nContent-Disposition: attachment; name=\"key\"\r\n\r\nv\r\n--b--",
            // No name.
            b"--b\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\nv\r\n--b--",
        ];
        for body in cases {
            let e = parse_cut("b", body, &[]).expect_err("malformed");
            assert_eq!(
                e.code,
                "MalformedPOSTRequest",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_file_ends_at_a_delimiter_followed_by_a_close_or_a_part() {
        let d = b"\r\n--b";
        assert_eq!(file_len_in(b"abc\r\n--b--", d).ok(), Some(3));
        assert_eq!(file_len_in(b"abc\r\n--b--\r\nepilogue", d).ok(), Some(3));
        assert_eq!(
            file_len_in(b"\r\n--b\r\nContent-Disposition: form-data; name=x", d).ok(),
            Some(0)
        );
        assert!(file_len_in(b"abc\r\n--bc", d).is_err());
        assert!(file_len_in(b"abc", d).is_err());
    }

    #[test]
    fn find_finds_the_first_match() {
        assert_eq!(find(b"aaab", b"ab"), Some(2));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"xyz", b"z"), Some(2));
        assert_eq!(find(b"", b"z"), None);
    }
}
