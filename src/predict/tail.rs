//! The last rows of a large plain CSV / TSV without reading it whole: its
//! header line and last `n` lines copied into a temporary file of the same
//! kind, for `seqlab predict --last`. `None` (read the whole file) for a
//! small, compressed or Parquet file, or a tail with a quote mark (a quoted
//! field may hold a line break, so lines are not rows there); a header the
//! reader cannot take fails the read of the copy, and the caller then reads
//! the whole file.
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Files below this size are read whole: the copy would save nothing.
const MIN_BYTES: u64 = 4 << 20;
/// Longest header line or tail copied.
const MAX_BYTES: u64 = 64 << 20;

pub fn copy(path: &Path, n: usize) -> Option<tempfile::NamedTempFile> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    if !matches!(ext.as_str(), "csv" | "tsv" | "txt") {
        return None;
    }
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if len < MIN_BYTES {
        return None;
    }
    let mut header = Vec::new();
    BufReader::new(&mut f)
        .take(MAX_BYTES)
        .read_until(b'\n', &mut header)
        .ok()?;
    if header.last() != Some(&b'\n') {
        return None;
    }
    let start = tail_start(&mut f, len, n, header.len() as u64)?;
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    f.take(MAX_BYTES).read_to_end(&mut tail).ok()?;
    if tail.contains(&b'"') {
        return None;
    }
    let mut tmp = tempfile::Builder::new()
        .suffix(&format!(".{ext}"))
        .tempfile()
        .ok()?;
    tmp.write_all(&header).ok()?;
    tmp.write_all(&tail).ok()?;
    tmp.flush().ok()?;
    Some(tmp)
}

/// Offset of the first of the last `n` lines (a final line break ends the
/// last line, it does not start an empty one); `None` when the file has not
/// that many lines after its header, or they are too long.
fn tail_start(f: &mut File, len: u64, n: usize, body: u64) -> Option<u64> {
    const BLOCK: u64 = 64 << 10;
    let mut end = len;
    let mut breaks = 0;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut skip_final = true;
    while end > body && len - end < MAX_BYTES {
        let start = end.saturating_sub(BLOCK).max(body);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start)).ok()?;
        f.read_exact(chunk).ok()?;
        for (i, &b) in chunk.iter().enumerate().rev() {
            if b != b'\n' {
                skip_final = false;
                continue;
            }
            if skip_final && start + i as u64 == len - 1 {
                continue;
            }
            breaks += 1;
            if breaks == n {
                return Some(start + i as u64 + 1);
            }
        }
        end = start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(lines: usize) -> tempfile::NamedTempFile {
        let mut t = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        writeln!(t, "time,x").unwrap();
        // Long lines so the file passes MIN_BYTES.
        let pad = "0".repeat(200);
        for i in 0..lines {
            writeln!(t, "{i},{pad}{i}").unwrap();
        }
        t
    }

    #[test]
    fn copies_the_header_and_exactly_the_last_lines() {
        let f = file_of(30_000);
        let tail = copy(f.path(), 5).expect("a large plain CSV");
        let text = std::fs::read_to_string(tail.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0], "time,x");
        assert!(lines[1].starts_with("29995,"), "{}", lines[1]);
        assert!(lines[5].starts_with("29999,"));
    }

    #[test]
    fn small_quoted_or_short_files_are_read_whole() {
        let small = file_of(10);
        assert!(copy(small.path(), 5).is_none(), "small");
        let big = file_of(30_000);
        assert!(copy(big.path(), 40_000).is_none(), "fewer lines than asked");
        let mut quoted = file_of(30_000);
        writeln!(quoted, "\"30000\",1").unwrap();
        assert!(copy(quoted.path(), 5).is_none(), "a quote mark in the tail");
    }
}
