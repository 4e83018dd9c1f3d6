//! How far a long pass over the whole registry has gone. `rebuild`, `ledger verify` and the
//! name index's check read every event or every captive: seconds at a few hundred thousand,
//! tens of seconds at millions, and nothing else tells the person waiting that it is working.

/// Told how far a pass has gone; a command-line tool draws a bar from it. Told at the start of
/// each pass and then every [`EVERY`] items, so a tool need not throttle it.
pub trait Progress {
    /// A pass begins over `total` items (0 when not known), `what` saying what they are and
    /// what is done to them ("events checked").
    fn begin(&self, what: &'static str, total: u64);
    /// `done` of the pass's items are done.
    fn advance(&self, done: u64);
}

/// Nobody to tell.
impl Progress for () {
    fn begin(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// How many items go by between two calls of [`Progress::advance`].
pub const EVERY: u64 = 1000;

/// Counts the items of one pass and tells `progress` every [`EVERY`].
pub(crate) struct Counter<'p> {
    progress: &'p dyn Progress,
    done: u64,
}

impl<'p> Counter<'p> {
    pub(crate) fn begin(progress: &'p dyn Progress, what: &'static str, total: u64) -> Self {
        progress.begin(what, total);
        Self { progress, done: 0 }
    }

    pub(crate) fn add(&mut self, n: u64) {
        let before = self.done / EVERY;
        self.done += n;
        if self.done / EVERY != before {
            self.progress.advance(self.done);
        }
    }
}

impl Drop for Counter<'_> {
    /// The pass's last items, fewer than [`EVERY`], are told too.
    fn drop(&mut self) {
        if !self.done.is_multiple_of(EVERY) {
            self.progress.advance(self.done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Told(RefCell<Vec<(&'static str, u64)>>);

    impl Progress for Told {
        fn begin(&self, what: &'static str, total: u64) {
            self.0.borrow_mut().push((what, total));
        }
        fn advance(&self, done: u64) {
            self.0.borrow_mut().push(("done", done));
        }
    }

    #[test]
    fn a_pass_is_told_every_thousand_and_at_its_end() {
        let told = Told::default();
        let mut one_by_one = Counter::begin(&told, "events", 2500);
        for _ in 0..2500 {
            one_by_one.add(1);
        }
        drop(one_by_one);
        let mut by_pages = Counter::begin(&told, "captives", 3000);
        for page in [600, 600, 600, 600, 600] {
            by_pages.add(page);
        }
        drop(by_pages);
        drop(Counter::begin(&told, "nothing", 0));
        assert_eq!(
            told.0.into_inner(),
            [
                ("events", 2500),
                ("done", 1000),
                ("done", 2000),
                ("done", 2500),
                ("captives", 3000),
                ("done", 1200),
                ("done", 2400),
                ("done", 3000),
                ("nothing", 0),
            ]
        );
    }
}
