//! A bar for each pass of a long command over the whole registry (`rebuild`, `ledger verify`):
//! what the pass does, how many of how many, and how long is left. At a million captives a
//! rebuild reads for tens of seconds, and silence then looks like a hang.

use std::cell::RefCell;
use std::io::IsTerminal;

use asylon_store::Progress;

/// Draws on standard error, and only when it is a terminal: a pipe or a log file gets nothing.
/// Each pass gets a bar of its own; the last is cleared when [`PassBar::clear`] is called or the
/// `PassBar` is dropped, so what the command prints next is not drawn over.
pub struct PassBar {
    shown: bool,
    bar: RefCell<Option<indicatif::ProgressBar>>,
}

impl PassBar {
    pub fn on_terminal() -> Self {
        Self {
            shown: std::io::stderr().is_terminal(),
            bar: RefCell::new(None),
        }
    }

    /// Takes the current bar off the terminal.
    pub fn clear(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for PassBar {
    fn begin(&self, what: &'static str, total: u64) {
        self.clear();
        if !self.shown {
            return;
        }
        let bar = styled(
            total,
            "{bar:40} {human_pos}/{human_len} {msg}  eta {eta}",
            "{spinner} {human_pos} {msg}",
        );
        bar.set_message(what);
        *self.bar.borrow_mut() = Some(bar);
    }

    fn advance(&self, done: u64) {
        if let Some(bar) = &*self.bar.borrow() {
            bar.set_position(done);
        }
    }
}

/// A bar of `total` steps drawn as `known`, or, when `total` is 0 (not known), a spinner drawn
/// as `unknown`.
pub fn styled(total: u64, known: &str, unknown: &str) -> indicatif::ProgressBar {
    let (bar, template) = match total {
        0 => (indicatif::ProgressBar::no_length(), unknown),
        n => (indicatif::ProgressBar::new(n), known),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

impl Drop for PassBar {
    fn drop(&mut self) {
        self.clear();
    }
}
