//! Progress of long transfers (`load`, `save`) on stderr: a bar redrawn in
//! place on a terminal, a line at the start and one at the end otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    what: &'static str,
    total: Option<u64>,
    tty: bool,
    last: Option<Instant>,
    done: u64,
    quiet: bool,
}

fn mb(n: u64) -> String {
    format!("{:.1}MB", n as f64 / 1e6)
}

impl Progress {
    /// `what` is shown before the bar ("Loading", "Saving"); `total` when known.
    pub fn new(what: &'static str, total: Option<u64>, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        if !quiet && !tty {
            match total {
                Some(t) => eprintln!("{what} {}...", mb(t)),
                None => eprintln!("{what}..."),
            }
        }
        Progress {
            what,
            total,
            tty,
            last: None,
            done: 0,
            quiet,
        }
    }

    /// `done` bytes so far; redraws at most ten times a second.
    pub fn update(&mut self, done: u64) {
        self.done = done;
        if self.quiet || !self.tty || self.last.is_some_and(|l| l.elapsed() < Duration::from_millis(100)) {
            return;
        }
        self.last = Some(Instant::now());
        self.draw();
    }

    fn draw(&self) {
        let line = match self.total {
            Some(t) if t > 0 => {
                let width = 40;
                let filled = ((self.done.min(t) as f64 / t as f64) * width as f64) as usize;
                let bar = format!("{}>{}", "=".repeat(filled), " ".repeat(width - filled));
                format!("{}  [{}] {}/{}", self.what, &bar[..width.max(1)], mb(self.done), mb(t))
            }
            _ => format!("{}  {}", self.what, mb(self.done)),
        };
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// The final state, and the end of the line.
    pub fn finish(self) {
        if self.quiet {
            return;
        }
        if self.tty {
            self.draw();
            eprintln!();
        } else {
            eprintln!("{} done: {}", self.what, mb(self.done));
        }
    }
}
