//! Docker's `json-file` log: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`, rotated to
//! `PATH.1`, `PATH.2`, ... when `max-size` is set. The monitor writes it
//! ([`LogWriter`]); berthd reads it back for `docker logs` ([`read`]).

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A line longer than this is logged in pieces, as Docker does (16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// Rotation settings (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes a file may reach before rotation; `None` never rotates.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 1).
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: None,
            max_files: 1,
        }
    }
}

impl Rotation {
    /// From Docker's `--log-opt` map; unknown options are refused.
    pub fn from_opts(opts: &serde_json::Map<String, serde_json::Value>) -> Result<Rotation, String> {
        let mut r = Rotation::default();
        for (k, v) in opts {
            let v = v.as_str().unwrap_or_default();
            match k.as_str() {
                "max-size" => {
                    let size = parse_size(v).ok_or_else(|| format!("invalid log-opt max-size {v:?}"))?;
                    if size == 0 {
                        return Err("log-opt max-size must be more than 0".into());
                    }
                    r.max_size = Some(size);
                }
                "max-file" => {
                    r.max_files = v
                        .parse()
                        .ok()
                        .filter(|n: &u32| *n >= 1)
                        .ok_or_else(|| format!("invalid log-opt max-file {v:?}: a number of at least 1"))?;
                }
                // Accepted and meaningless here, as in Docker.
                "compress" | "labels" | "env" | "env-regex" | "tag" => {}
                other => return Err(format!("unknown log opt '{other}' for json-file log driver")),
            }
        }
        if r.max_files > 1 && r.max_size.is_none() {
            return Err("max-file cannot be set without max-size".into());
        }
        Ok(r)
    }
}

/// `10m`, `1g`, `512k`, `100` (bytes), as Docker's units.RAMInBytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    log: std::borrow::Cow<'a, str>,
    stream: std::borrow::Cow<'a, str>,
    time: std::borrow::Cow<'a, str>,
}

/// The log of one container, written as output arrives.
pub struct LogWriter {
    path: PathBuf,
    rotation: Rotation,
    file: File,
    size: u64,
    /// Bytes of an unfinished line, per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<LogWriter> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            rotation,
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs `data` from `stream` (1 stdout, 2 stderr): every complete line
    /// becomes an entry; the rest waits for its newline.
    pub fn write(&mut self, stream: u8, data: &[u8]) -> io::Result<()> {
        let slot = usize::from(stream == 2);
        let mut buf = std::mem::take(&mut self.partial[slot]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            self.entry(stream, &buf[start..start + nl + 1])?;
            start += nl + 1;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE])?;
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[slot] = buf;
        Ok(())
    }

    /// Logs what is left of unfinished lines (at the end of output).
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in [1u8, 2] {
            let rest = std::mem::take(&mut self.partial[usize::from(stream == 2)]);
            if !rest.is_empty() {
                self.entry(stream, &rest)?;
            }
        }
        self.file.flush()
    }

    fn entry(&mut self, stream: u8, line: &[u8]) -> io::Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(line),
            stream: if stream == 2 { "stderr" } else { "stdout" }.into(),
            time: crate::time::now_rfc3339().into(),
        };
        let mut text = serde_json::to_vec(&e).map_err(io::Error::other)?;
        text.push(b'\n');
        if let Some(max) = self.rotation.max_size {
            if self.size > 0 && self.size + text.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(&text)?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let n = self.rotation.max_files;
        if n > 1 {
            for i in (1..n - 1).rev() {
                let _ = std::fs::rename(numbered(&self.path, i), numbered(&self.path, i + 1));
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
            self.file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn numbered(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// One log entry read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    pub text: Vec<u8>,
    pub time: SystemTime,
    /// The time as written, for `--timestamps`.
    pub time_text: String,
}

/// Parses one line of the log; `None` for a torn or foreign line.
pub fn parse_line(raw: &[u8]) -> Option<Line> {
    let e: Entry = serde_json::from_slice(raw).ok()?;
    Some(Line {
        stream: if e.stream == "stderr" { 2 } else { 1 },
        text: e.log.into_owned().into_bytes(),
        time: crate::time::parse_rfc3339(&e.time)?,
        time_text: e.time.into_owned(),
    })
}

/// The log files of `path`, oldest first (rotated ones, then the current).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    let mut i = 1;
    while numbered(path, i).exists() {
        rotated.push((i, numbered(path, i)));
        i += 1;
    }
    let mut out: Vec<PathBuf> = rotated.into_iter().rev().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

/// Every entry of the log, oldest first.
pub fn read(path: &Path) -> Vec<Line> {
    let mut out = Vec::new();
    for f in files(path) {
        let Ok(file) = File::open(&f) else { continue };
        for raw in io::BufReader::new(file).split(b'\n').map_while(Result::ok) {
            out.extend(parse_line(&raw));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_joined_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path, Rotation::default()).unwrap();
        w.write(1, b"hel").unwrap();
        w.write(2, b"oops\n").unwrap();
        w.write(1, b"lo\nwor").unwrap();
        w.flush().unwrap();
        let got: Vec<(u8, Vec<u8>)> = read(&path).into_iter().map(|l| (l.stream, l.text)).collect();
        assert_eq!(got, vec![(2, b"oops\n".to_vec()), (1, b"hello\n".to_vec()), (1, b"wor".to_vec())]);

        let path = dir.path().join("r-json.log");
        let rotation = Rotation {
            max_size: Some(300),
            max_files: 3,
        };
        let mut w = LogWriter::open(&path, rotation).unwrap();
        for i in 0..40 {
            w.write(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        let kept = read(&path);
        assert!(numbered(&path, 2).exists() && !numbered(&path, 3).exists());
        assert_eq!(kept.last().unwrap().text, b"line 39\n");
        // Oldest first, and nothing in between lost.
        let first: usize = String::from_utf8_lossy(&kept[0].text)[5..].trim().parse().unwrap();
        assert_eq!(kept.len(), 40 - first);
        for f in files(&path) {
            assert!(std::fs::metadata(&f).unwrap().len() <= 300);
        }
    }

    #[test]
    fn options_are_checked() {
        let opts = |v: serde_json::Value| Rotation::from_opts(v.as_object().unwrap());
        assert_eq!(
            opts(serde_json::json!({"max-size": "10m", "max-file": "3"})).unwrap(),
            Rotation {
                max_size: Some(10 << 20),
                max_files: 3
            }
        );
        assert!(opts(serde_json::json!({"max-size": "ten"})).unwrap_err().contains("max-size"));
        assert!(opts(serde_json::json!({"max-file": "2"})).unwrap_err().contains("without max-size"));
        assert!(opts(serde_json::json!({"bogus": "1"})).unwrap_err().contains("bogus"));
        assert_eq!(parse_size("1.5k"), Some(1536));
    }
}
