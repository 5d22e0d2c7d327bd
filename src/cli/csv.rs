//! The CSV reader of `leadbase import`: RFC 4180 as the export writes it (cells split at commas;
//! a quoted cell may hold commas, line breaks and doubled quotes; records end in CRLF or LF) and
//! as spreadsheets save it (a UTF-8 byte-order mark, no line break after the last record).
//! Lenient where RFC 4180 forbids but nothing is ambiguous: a quote inside an unquoted cell,
//! and text after a closing quote, are kept as they are. A record is numbered by the line it
//! starts on; a blank line is no record.

use std::io::{self, BufRead};

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("line {line}: {what}")]
    Malformed { line: u64, what: &'static str },
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    /// The line it starts on, from 1.
    pub line: u64,
    pub cells: Vec<String>,
}

pub struct CsvReader<R> {
    input: R,
    /// Lines read so far.
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> CsvReader<R> {
        CsvReader {
            input,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next record, `None` after the last.
    pub fn next_record(&mut self) -> Result<Option<Record>, CsvError> {
        loop {
            let line = self.line + 1;
            let Some(cells) = self.cells(line)? else {
                return Ok(None);
            };
            let blank = matches!(cells.as_slice(),
                [Cell { text, quoted: false }] if text.iter().all(u8::is_ascii_whitespace));
            if blank {
                continue;
            }
            let cells = cells
                .into_iter()
                .map(|c| String::from_utf8(c.text))
                .collect::<Result<_, _>>()
                .map_err(|_| CsvError::Malformed {
                    line,
                    what: "the text is not UTF-8 (save the file as UTF-8)",
                })?;
            return Ok(Some(Record { line, cells }));
        }
    }

    /// The cells of the record that starts at `line`, as bytes; `None` at the end of the input.
    fn cells(&mut self, line: u64) -> Result<Option<Vec<Cell>>, CsvError> {
        let mut cells = Vec::new();
        let mut cell = Cell::default();
        let mut in_quotes = false;
        loop {
            self.buf.clear();
            if self.input.read_until(b'\n', &mut self.buf)? == 0 {
                if in_quotes {
                    return Err(CsvError::Malformed {
                        line,
                        what: "a quoted cell is not closed before the end of the file",
                    });
                }
                return Ok(None);
            }
            self.line += 1;
            let mut bytes = self.buf.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let mut i = 0;
            while i < bytes.len() {
                let b = bytes[i];
                i += 1;
                if in_quotes {
                    // Line breaks inside quotes are part of the cell.
                    if b != b'"' {
                        cell.text.push(b);
                    } else if bytes.get(i) == Some(&b'"') {
                        cell.text.push(b'"');
                        i += 1;
                    } else {
                        in_quotes = false;
                    }
                    continue;
                }
                match b {
                    b',' => cells.push(std::mem::take(&mut cell)),
                    b'"' if cell.text.is_empty() && !cell.quoted => {
                        in_quotes = true;
                        cell.quoted = true;
                    }
                    // The line's break: `read_until` stops after the `\n`.
                    b'\n' => {}
                    b'\r' if bytes[i..] == *b"\n" || i == bytes.len() => {}
                    _ => cell.text.push(b),
                }
            }
            if !in_quotes {
                break;
            }
        }
        cells.push(cell);
        Ok(Some(cells))
    }
}

#[derive(Default)]
struct Cell {
    text: Vec<u8>,
    quoted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Result<Vec<(u64, Vec<String>)>, String> {
        let mut reader = CsvReader::new(text.as_bytes());
        let mut out = Vec::new();
        loop {
            match reader.next_record() {
                Ok(Some(r)) => out.push((r.line, r.cells)),
                Ok(None) => return Ok(out),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn row(line: u64, cells: &[&str]) -> (u64, Vec<String>) {
        (line, cells.iter().map(|c| c.to_string()).collect())
    }

    #[test]
    fn quoted_cells_hold_commas_quotes_and_line_breaks() {
        let text = "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\nhere\"\r\n,,\r\n\"\",plain,'=1\r\n";
        assert_eq!(
            records(text).unwrap(),
            [
                row(1, &["a", "b", "c"]),
                row(2, &["x, y", "say \"hi\"", "two\r\nlines\nhere"]),
                row(5, &["", "", ""]),
                row(6, &["", "plain", "'=1"]),
            ]
        );
    }

    #[test]
    fn lf_endings_a_bom_blank_lines_and_no_final_break() {
        let text = "\u{feff}h1,h2\n\n1,\"2\"\n\r\n  \n\"a\nb\",c\r\n3,4";
        assert_eq!(
            records(text).unwrap(),
            [
                row(1, &["h1", "h2"]),
                row(3, &["1", "2"]),
                row(6, &["a\nb", "c"]),
                row(8, &["3", "4"])
            ]
        );
        assert_eq!(records("").unwrap(), []);
        assert_eq!(
            records("\"\"\n").unwrap(),
            [row(1, &[""])],
            "a quoted empty cell"
        );
    }

    #[test]
    fn stray_quotes_are_kept_and_an_open_quote_is_an_error() {
        assert_eq!(
            records("ab\"c,\"d\"e\n").unwrap(),
            [row(1, &["ab\"c", "de"])]
        );
        assert_eq!(
            records("a\n\"open,\nstill\n").unwrap_err(),
            "line 2: a quoted cell is not closed before the end of the file"
        );
        assert_eq!(
            CsvReader::new(&b"ok\n\xff\n"[..])
                .next_record()
                .map(|r| r.map(|r| r.cells))
                .unwrap(),
            Some(vec!["ok".to_string()])
        );
        let mut reader = CsvReader::new(&b"ok\n\xff\n"[..]);
        reader.next_record().unwrap();
        assert_eq!(
            reader.next_record().unwrap_err().to_string(),
            "line 2: the text is not UTF-8 (save the file as UTF-8)"
        );
    }
}
