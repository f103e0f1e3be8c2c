//! Showing a running backup: a redrawn status block on a terminal, a plain
//! status line every few seconds otherwise, or restic's `--json` status
//! lines — all on stdout, as restic prints them.
//!
//! [`Display`] owns the terminal: messages (warnings, errors) go through
//! [`Display::message`], which erases the status block first so the two
//! never mix. The status is drawn by a thread started with
//! [`Display::run`], which stops when its channel closes.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cairn_core::archiver::{Progress, ProgressSnapshot};
use serde::Serialize;

use crate::output::format_bytes;

/// How the status is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (`--quiet`).
    Off,
    /// A block redrawn in place.
    Terminal,
    /// A plain line now and then.
    Lines,
    /// restic's JSON status messages.
    Json,
}

impl Mode {
    /// The mode for these global flags and this stdout.
    pub fn detect(json: bool, quiet: bool) -> Mode {
        match (json, quiet) {
            (_, true) => Mode::Off,
            (true, false) => Mode::Json,
            (false, false) if std::io::stdout().is_terminal() => Mode::Terminal,
            _ => Mode::Lines,
        }
    }

    /// How often to show the status; `RESTIC_PROGRESS_FPS` (or
    /// `CAIRN_PROGRESS_FPS`) overrides the default.
    fn interval(self) -> Duration {
        let fps = crate::context::env("PROGRESS_FPS").and_then(|s| s.parse::<f64>().ok());
        if let Some(fps) = fps.filter(|f| *f > 0.0) {
            return Duration::from_secs_f64(1.0 / fps.min(60.0));
        }
        match self {
            Mode::Terminal => Duration::from_millis(200),
            Mode::Json => Duration::from_secs(1),
            Mode::Lines | Mode::Off => Duration::from_secs(5),
        }
    }
}

/// The terminal, shared by the status thread and the message printers.
pub struct Display {
    mode: Mode,
    /// Lines of the status block currently on screen.
    drawn: Mutex<usize>,
}

/// restic's `status` message.
#[derive(Serialize)]
struct StatusJson<'a> {
    message_type: &'static str,
    seconds_elapsed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_remaining: Option<u64>,
    percent_done: f64,
    total_files: u64,
    files_done: u64,
    total_bytes: u64,
    bytes_done: u64,
    error_count: u64,
    /// cairn: bytes read from files so far (unchanged files are not read).
    bytes_read: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    current_files: &'a [String],
}

impl Display {
    pub fn new(mode: Mode) -> Self {
        Display {
            mode,
            drawn: Mutex::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.drawn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Print a message line to stderr, erasing the status block first.
    pub fn message(&self, line: &str) {
        let mut drawn = self.lock();
        let mut out = std::io::stdout().lock();
        erase(&mut out, &mut drawn);
        let _ = out.flush();
        eprintln!("{line}");
    }

    /// Print a line to stdout, erasing the status block first.
    pub fn message_stdout(&self, line: &str) {
        let mut drawn = self.lock();
        let mut out = std::io::stdout().lock();
        erase(&mut out, &mut drawn);
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Show the status until `done` closes; then erase it.
    pub fn run(&self, progress: &Progress, done: Receiver<()>) {
        if self.mode == Mode::Off {
            return;
        }
        let interval = self.mode.interval();
        while let Err(RecvTimeoutError::Timeout) = done.recv_timeout(interval) {
            self.show(&progress.snapshot());
        }
        if self.mode == Mode::Terminal {
            let mut drawn = self.lock();
            let mut out = std::io::stdout().lock();
            erase(&mut out, &mut drawn);
            let _ = out.flush();
        }
    }

    fn show(&self, s: &ProgressSnapshot) {
        let mut drawn = self.lock();
        let mut out = std::io::stdout().lock();
        match self.mode {
            Mode::Off => {}
            Mode::Json => {
                let current: Vec<String> = s
                    .current_files
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                let status = StatusJson {
                    message_type: "status",
                    seconds_elapsed: s.elapsed.as_secs(),
                    seconds_remaining: s.eta().map(|d| d.as_secs()),
                    percent_done: s.fraction(),
                    total_files: s.total_files,
                    files_done: s.files_done,
                    total_bytes: s.total_bytes,
                    bytes_done: s.bytes_done,
                    error_count: s.errors,
                    bytes_read: s.bytes_read,
                    current_files: &current,
                };
                if let Ok(line) = serde_json::to_string(&status) {
                    let _ = writeln!(out, "{line}");
                }
            }
            Mode::Lines => {
                let _ = writeln!(out, "{}", status_line(s));
            }
            Mode::Terminal => {
                erase(&mut out, &mut drawn);
                let width = terminal_width();
                let mut lines = vec![status_line(s)];
                lines.extend(s.current_files.iter().map(|p| current_line(p)));
                for line in &lines {
                    let _ = writeln!(out, "{}", truncate(line, width));
                }
                *drawn = lines.len();
            }
        }
        let _ = out.flush();
    }
}

/// Move up over the status block and clear it.
fn erase(out: &mut impl Write, drawn: &mut usize) {
    for _ in 0..*drawn {
        let _ = write!(out, "\x1b[1A\x1b[2K");
    }
    *drawn = 0;
}

/// `[0:12] 45.20%  1234 files 1.200 GiB, total 5000 files 2.600 GiB, 0 errors, 80.0 MiB/s, ETA 0:15`
pub fn status_line(s: &ProgressSnapshot) -> String {
    let mut line = format!("[{}]", format_duration(s.elapsed));
    if s.total_bytes > 0 {
        line.push_str(&format!(" {:.2}%", s.fraction() * 100.0));
    }
    line.push_str(&format!(
        "  {} files {}",
        s.files_done,
        format_bytes(s.bytes_done)
    ));
    if s.total_files > 0 || s.scan_finished {
        line.push_str(&format!(
            ", total {} files {}",
            s.total_files,
            format_bytes(s.total_bytes)
        ));
    }
    line.push_str(&format!(", {} errors", s.errors));
    line.push_str(&format!(", {}/s", format_bytes(s.rate() as u64)));
    if let Some(eta) = s.eta() {
        line.push_str(&format!(", ETA {}", format_duration(eta)));
    }
    line
}

fn current_line(path: &Path) -> String {
    format!("  reading {}", path.display())
}

fn truncate(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    line.chars().take(width.saturating_sub(1)).collect()
}

/// The terminal's width from `COLUMNS`, else 80 (lines are cut to it so
/// the block can be erased line by line).
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c: &usize| c > 10)
        .unwrap_or(80)
}

/// restic's `m:ss`, or `h:mm:ss` past an hour.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_restic() {
        assert_eq!(format_duration(Duration::from_millis(900)), "0:00");
        assert_eq!(format_duration(Duration::from_secs(75)), "1:15");
        assert_eq!(format_duration(Duration::from_secs(3723)), "1:02:03");
    }

    #[test]
    fn status_line_shows_done_total_rate_and_eta() {
        let s = ProgressSnapshot {
            elapsed: Duration::from_secs(10),
            files_done: 3,
            bytes_done: 1 << 20,
            total_files: 6,
            total_bytes: 2 << 20,
            scan_finished: true,
            ..ProgressSnapshot::default()
        };
        let line = status_line(&s);
        assert!(line.starts_with("[0:10] 50.00%  3 files 1"), "{line}");
        assert!(line.contains("total 6 files 2"), "{line}");
        assert!(line.contains("0 errors"), "{line}");
        assert!(line.ends_with("ETA 0:10"), "{line}");
        assert_eq!(truncate("abcdef", 4), "abc");
    }
}
