//! A captive's age on the day of his capture, and what the law says of a child captive.
//!
//! Nothing is refused for his age: a child who fought is registered like any other captive, and
//! his record is what protects him. A date of birth that makes him a child at capture is told to
//! whoever registers him (a child to hold apart, or a typing error to correct) and shown with his
//! record.

use crate::PartialDate;
use serde::Serialize;
use std::fmt;
use time::Date;

/// The age under which the Convention on the Rights of the Child (Art 1) counts him a child.
pub const ADULT: u16 = 18;
/// The age under which AP I Art 77(2) forbids recruiting him at all.
pub const RECRUITABLE: u16 = 15;

/// How old he was on a day, in whole years, as far as the dates tell: the least and the most he
/// can have been (the same when both are known to the day; a year apart at most when his date
/// of birth is known only to the year).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Age {
    pub least: u16,
    pub most: u16,
}

impl Age {
    /// His age on `on`, born on `born`; `None` if every day `born` can mean is after every day
    /// `on` can mean (validation refuses that date of birth).
    pub fn between(born: PartialDate, on: PartialDate) -> Option<Self> {
        let most = whole_years(born.earliest()?, on.latest()?)?;
        let least = whole_years(born.latest()?, on.earliest()?).unwrap_or(0);
        Some(Self { least, most })
    }

    /// Whether he was a child at his capture, as far as the dates tell; `None` when he was
    /// surely an adult.
    pub fn childhood(&self) -> Option<Childhood> {
        Some(if self.most < RECRUITABLE {
            Childhood::Under15
        } else if self.least < RECRUITABLE {
            Childhood::MaybeUnder15
        } else if self.most < ADULT {
            Childhood::Under18
        } else if self.least < ADULT {
            Childhood::MaybeUnder18
        } else {
            return None;
        })
    }

    /// What the law says of a captive of this age at his capture, in words; `None` when he was
    /// surely an adult.
    pub fn child(&self) -> Option<String> {
        let childhood = self.childhood()?;
        let label = childhood.label();
        Some(match childhood {
            Childhood::Under15 => format!("{label}: {CHILD}; {UNDER_15}"),
            Childhood::MaybeUnder15 => format!("{label}: {CHILD}; if under 15, {UNDER_15}"),
            Childhood::Under18 => format!("{label}: {CHILD}"),
            Childhood::MaybeUnder18 => format!("{label}: if so, {CHILD}"),
        })
    }
}

/// What the law says of every captive under 18 at his capture.
pub const CHILD: &str = "a child (Convention on the Rights of the Child, Art 1): he is held \
    apart from adults unless that is not in his best interest (CRC Art 37(c), AP I Art 77(4)), \
    and no death sentence may be carried out for an offence related to the conflict that he \
    committed before 18 (AP I Art 77(5))";
/// What it says besides of one under 15.
pub const UNDER_15: &str = "his recruitment was itself forbidden (AP I Art 77(2)) and he keeps a \
    child's special protection whether or not he is a prisoner of war (Art 77(3))";

/// How much of his childhood at capture the dates establish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Childhood {
    Under15,
    /// Under 18, and under 15 for some of the days his date of birth can mean.
    MaybeUnder15,
    Under18,
    /// Under 18 for some of the days his date of birth can mean.
    MaybeUnder18,
}

impl Childhood {
    pub fn label(self) -> &'static str {
        match self {
            Self::Under15 => "under 15",
            Self::MaybeUnder15 => {
                "under 18, and maybe under 15 (his date of birth is not known to the day)"
            }
            Self::Under18 => "under 18",
            Self::MaybeUnder18 => "maybe under 18 (his date of birth is not known to the day)",
        }
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.most.saturating_sub(self.least) {
            0 => write!(f, "{}", self.most),
            1 => write!(f, "{} or {}", self.least, self.most),
            _ => write!(f, "{} to {}", self.least, self.most),
        }
    }
}

/// Whole years from `born` to `on`, a birthday counting from its day (one born on 29 February
/// is a year older on 1 March of a common year); `None` if he was born after `on`.
fn whole_years(born: Date, on: Date) -> Option<u16> {
    if born > on {
        return None;
    }
    let birthday_to_come = (on.month() as u8, on.day()) < (born.month() as u8, born.day());
    u16::try_from(on.year() - born.year() - i32::from(birthday_to_come)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(s: &str) -> PartialDate {
        PartialDate::parse(s).unwrap()
    }

    fn age(born: &str, on: &str) -> Option<Age> {
        Age::between(date(born), date(on))
    }

    #[test]
    fn whole_years_count_from_the_birthday() {
        let a = |born, on| age(born, on).map(|a| (a.least, a.most));
        assert_eq!(a("2008-05-10", "2026-05-09"), Some((17, 17)));
        assert_eq!(a("2008-05-10", "2026-05-10"), Some((18, 18)));
        assert_eq!(a("2008-02-29", "2026-02-28"), Some((17, 17)));
        assert_eq!(a("2008-02-29", "2026-03-01"), Some((18, 18)));
        assert_eq!(a("2026-05-10", "2026-05-10"), Some((0, 0)));
        assert_eq!(a("2026-05-11", "2026-05-10"), None);
        // Known to the year or the month: the least and the most he can have been.
        assert_eq!(a("2008", "2026-05-10"), Some((17, 18)));
        assert_eq!(a("2008-05", "2026-05-10"), Some((17, 18)));
        assert_eq!(a("2008-04", "2026-05-10"), Some((18, 18)));
        assert_eq!(a("2008-06", "2026-05-10"), Some((17, 17)));
        // Born in the year of his capture, maybe after it: none but the least is in doubt.
        assert_eq!(a("2026", "2026-05-10"), Some((0, 0)));
        assert_eq!(a("2008", "2026"), Some((17, 18)));
    }

    #[test]
    fn the_law_is_told_for_a_child_and_for_one_who_may_be() {
        let said = |born, on| age(born, on).and_then(|a| a.child());
        assert_eq!(said("1990-01-01", "2026-05-10"), None);
        assert_eq!(said("2008-05-10", "2026-05-10"), None);
        let minor = said("2008-05-11", "2026-05-10").unwrap();
        assert!(minor.starts_with("under 18: a child"), "{minor}");
        assert!(
            minor.contains("Art 77(5)") && !minor.contains("77(2)"),
            "{minor}"
        );
        let maybe = said("2008", "2026-05-10").unwrap();
        assert!(maybe.starts_with("maybe under 18"), "{maybe}");
        let young = said("2012-01-01", "2026-05-10").unwrap();
        assert!(
            young.starts_with("under 15: a child") && young.contains("77(2)"),
            "{young}"
        );
        let maybe_young = said("2011", "2026-05-10").unwrap();
        assert!(
            maybe_young.starts_with("under 18, and maybe under 15"),
            "{maybe_young}"
        );
    }

    #[test]
    fn an_age_reads_as_one_number_or_two() {
        assert_eq!(age("2008-05-10", "2026-06-01").unwrap().to_string(), "18");
        assert_eq!(age("2008", "2026-06-01").unwrap().to_string(), "17 or 18");
        assert_eq!(age("2008", "2026").unwrap().to_string(), "17 or 18");
        assert_eq!(age("2008", "2030").unwrap().to_string(), "21 or 22");
        let wide = Age {
            least: 16,
            most: 18,
        };
        assert_eq!(wide.to_string(), "16 to 18");
    }

    proptest! {
        /// Against a count by hand: the years of every day from `born` to `on`, a day at a time,
        /// each year added on the day its date matches his birthday's (the day after 28
        /// February in a common year for one born on the 29th).
        #[test]
        fn whole_years_agree_with_counting_birthdays(b in 0i64..3000, span in 0i64..8000) {
            let born = Date::from_calendar_date(2000, time::Month::January, 1).unwrap()
                + time::Duration::days(b);
            let on = born + time::Duration::days(span);
            let mut years = 0u16;
            let mut day = born;
            while day < on {
                day = day.next_day().unwrap();
                let leap_born = (born.month(), born.day()) == (time::Month::February, 29);
                let birthday = (day.month(), day.day()) == (born.month(), born.day())
                    || (leap_born
                        && !time::util::is_leap_year(day.year())
                        && (day.month(), day.day()) == (time::Month::March, 1));
                if birthday {
                    years += 1;
                }
            }
            prop_assert_eq!(whole_years(born, on), Some(years));
            let age = Age::between(PartialDate::Full(born), PartialDate::Full(on)).unwrap();
            prop_assert_eq!((age.least, age.most), (years, years));
        }

        /// A date known to the year or the month holds every day-exact age between its bounds.
        #[test]
        fn a_partial_date_bounds_every_day_it_can_mean(b in 0i64..3000, span in 0i64..8000) {
            let born = Date::from_calendar_date(2000, time::Month::January, 1).unwrap()
                + time::Duration::days(b);
            let on = PartialDate::Full(born + time::Duration::days(span));
            let exact = Age::between(PartialDate::Full(born), on).unwrap().least;
            for partial in [
                PartialDate::Year(born.year()),
                PartialDate::YearMonth(born.year(), born.month() as u8),
            ] {
                let range = Age::between(partial, on).unwrap();
                prop_assert!(range.least <= exact && exact <= range.most, "{range:?} {exact}");
                prop_assert!(range.most - range.least <= 1);
            }
        }
    }
}
