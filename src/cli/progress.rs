//! A progress line on stderr for long CLI work (decrypting, rewrapping, migrating).
//!
//! Deliberately small instead of a progress-bar crate: one line redrawn with `\r` at
//! most every [`REDRAW_EVERY`], only when stderr is a terminal (or when forced), so logs
//! and pipes never fill with carriage returns. Stdout is left alone: commands print
//! their results there.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
pub const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// What the counted quantity is, for the line's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Sizes shown as KiB/MiB/GiB, with a rate.
    Bytes,
    /// Plain counts (objects), with a rate per second.
    Items,
}

/// One progress line. Call [`Progress::advance`] as work completes and
/// [`Progress::finish`] (or [`Progress::abandon`]) at the end.
#[derive(Debug)]
pub struct Progress {
    label: String,
    unit: Unit,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
    visible: bool,
}

impl Progress {
    /// A progress line for `total` units (`None` when unknown); shown only when stderr
    /// is a terminal.
    pub fn new(label: impl Into<String>, unit: Unit, total: Option<u64>) -> Progress {
        Progress::with_visibility(label, unit, total, std::io::stderr().is_terminal())
    }

    /// Same, with visibility chosen by the caller (`--progress` flags, tests).
    pub fn with_visibility(
        label: impl Into<String>,
        unit: Unit,
        total: Option<u64>,
        visible: bool,
    ) -> Progress {
        Progress {
            label: label.into(),
            unit,
            total,
            done: 0,
            started: Instant::now(),
            last_draw: None,
            visible,
        }
    }

    /// Units completed so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Adds `n` completed units and redraws if the last draw is old enough.
    pub fn advance(&mut self, n: u64) {
        self.done = self.done.saturating_add(n);
        let due = self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW_EVERY);
        if self.visible && due {
            self.draw(false);
        }
    }

    /// Draws the final state and ends the line.
    pub fn finish(mut self) {
        if self.visible {
            self.draw(true);
        }
    }

    /// Ends the line without claiming completion (on errors).
    pub fn abandon(self) {
        if self.visible && self.last_draw.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }

    /// The line's text, without the leading `\r`.
    pub fn render(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        // Precision loss in f64 is irrelevant for a human-readable rate.
        #[allow(clippy::cast_precision_loss)]
        let rate = self.done as f64 / elapsed;
        let amount = match (self.unit, self.total) {
            (Unit::Bytes, Some(t)) => format!("{} / {}", human_bytes(self.done), human_bytes(t)),
            (Unit::Bytes, None) => human_bytes(self.done),
            (Unit::Items, Some(t)) => format!("{} / {t}", self.done),
            (Unit::Items, None) => self.done.to_string(),
        };
        let percent = match self.total {
            Some(0) => " 100%".to_string(),
            Some(t) => format!(" {:>3}%", self.done.min(t).saturating_mul(100) / t),
            None => String::new(),
        };
        let speed = match self.unit {
            // f64 → u64 saturates in Rust; a rate never needs more.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Unit::Bytes => format!("{}/s", human_bytes(rate as u64)),
            Unit::Items => format!("{rate:.1}/s"),
        };
        format!("{}:{percent} {amount} ({speed})", self.label)
    }

    fn draw(&mut self, last: bool) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\x1b[K", self.render());
        if last {
            let _ = writeln!(err);
        }
        let _ = err.flush();
        self.last_draw = Some(Instant::now());
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024 * 1024 && unit + 2 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    if n < 1024 {
        return format!("{n} B");
    }
    // Shown with one decimal; f64 precision is ample for display.
    #[allow(clippy::cast_precision_loss)]
    let shown = value as f64 / 1024.0;
    format!(
        "{shown:.1} {}",
        UNITS.get(unit + 1).copied().unwrap_or("TiB")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_the_unit() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn render_shows_percent_and_totals() {
        let mut p = Progress::with_visibility("decrypt", Unit::Bytes, Some(2048), false);
        p.advance(1024);
        let line = p.render();
        assert!(
            line.starts_with("decrypt:  50% 1.0 KiB / 2.0 KiB ("),
            "{line}"
        );
        let mut p = Progress::with_visibility("rewrap", Unit::Items, Some(3), false);
        p.advance(3);
        assert!(
            p.render().starts_with("rewrap: 100% 3 / 3 ("),
            "{}",
            p.render()
        );
        assert_eq!(p.done(), 3);
    }

    #[test]
    fn unknown_total_has_no_percent() {
        let mut p = Progress::with_visibility("scan", Unit::Items, None, false);
        p.advance(7);
        assert!(p.render().starts_with("scan: 7 ("), "{}", p.render());
    }
}
