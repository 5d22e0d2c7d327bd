//! The progress line of a long offline command on stderr.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// The progress line on stderr: redrawn in place on a terminal, else a line every few seconds.
pub(super) struct Progress {
    total: u64,
    what: &'static str,
    started: Instant,
    shown: Instant,
    terminal: bool,
}

impl Progress {
    /// `what` names the work, `total` is the count of what it does.
    pub(super) fn new(what: &'static str, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            what,
            started: now,
            shown: now,
            terminal: io::stderr().is_terminal(),
        }
    }

    pub(super) fn show(&mut self, done: u64) {
        let every = match self.terminal {
            true => Duration::from_millis(200),
            false => Duration::from_secs(5),
        };
        if self.shown.elapsed() < every {
            return;
        }
        self.shown = Instant::now();
        let rate = self.rate(done);
        let eta = match rate > 0.0 {
            true => clock(self.total.saturating_sub(done) as f64 / rate),
            false => "?".into(),
        };
        let line = format!(
            "{}: {done} / {} rows ({}%), {rate:.0} rows/s, ETA {eta}",
            self.what,
            self.total,
            (done * 100).checked_div(self.total).unwrap_or(100)
        );
        self.draw(&line, false);
    }

    pub(super) fn finish(&self, done: u64) {
        let line = format!(
            "{}: {done} / {} rows in {:.1} s, {:.0} rows/s",
            self.what,
            self.total,
            self.started.elapsed().as_secs_f64(),
            self.rate(done)
        );
        self.draw(&line, true);
    }

    fn rate(&self, done: u64) -> f64 {
        done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    fn draw(&self, line: &str, last: bool) {
        let mut err = io::stderr().lock();
        let _ = match (self.terminal, last) {
            (true, false) => write!(err, "\r{line}\x1b[K"),
            (true, true) => writeln!(err, "\r{line}\x1b[K"),
            (false, _) => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }
}

/// Seconds as `m:ss`, or `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let s = seconds.ceil() as u64;
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_reads_as_a_clock() {
        assert_eq!(clock(0.2), "0:01");
        assert_eq!(clock(75.0), "1:15");
        assert_eq!(clock(3_725.0), "1:02:05");
    }
}
