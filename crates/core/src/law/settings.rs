use serde::{Deserialize, Serialize};

/// Deployment settings (DESIGN, "Guards"). Kept in the data directory; every field has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// G2: interviews stating the same third state needed for a verified wish.
    pub interviews_needed: u32,
    /// G2: days between the first and the last of those interviews.
    pub interview_span_days: u32,
    /// G4: days within which the neutral agency's reconfirmation must precede the hand-over.
    pub reconfirm_within_days: u32,
    /// G8: days after registration (and after each reportable change) for the Art 122 notification.
    pub notification_days: u32,
    /// G8: days after arrival at a camp for the Art 70 capture card.
    pub capture_card_days: u32,
    /// G8: days between health updates of the seriously wounded.
    pub health_update_days: u32,
    /// G8: months within which a commission's decision to repatriate is carried out (Art 110).
    pub commission_months: u32,
    /// Statistics suppress cells smaller than this.
    pub k_anonymity: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interviews_needed: 2,
            interview_span_days: 7,
            reconfirm_within_days: 2,
            notification_days: 7,
            capture_card_days: 7,
            health_update_days: 7,
            commission_months: 3,
            k_anonymity: 5,
        }
    }
}

impl Settings {
    /// Refuses settings that would switch a guard off, or put a deadline beyond any calendar:
    /// each is at least its least (1, but the interviews may all fall on one day and
    /// k-anonymity needs groups of two) and at most a bound far past any use (ten years of
    /// days, ten years of months), so that no due date is out of the range dates can hold.
    pub fn validate(&self) -> Result<(), String> {
        let bounds = [
            ("interviews_needed", self.interviews_needed, 1, 100),
            ("interview_span_days", self.interview_span_days, 0, MAX_DAYS),
            (
                "reconfirm_within_days",
                self.reconfirm_within_days,
                1,
                MAX_DAYS,
            ),
            ("notification_days", self.notification_days, 1, MAX_DAYS),
            ("capture_card_days", self.capture_card_days, 1, MAX_DAYS),
            ("health_update_days", self.health_update_days, 1, MAX_DAYS),
            ("commission_months", self.commission_months, 1, 120),
            ("k_anonymity", self.k_anonymity, 2, 1_000_000),
        ];
        for (name, v, least, most) in bounds {
            if v < least {
                return Err(format!("{name} must be at least {least}"));
            }
            if v > most {
                return Err(format!("{name} must be at most {most}"));
            }
        }
        Ok(())
    }
}

/// The most days a setting may give: ten years.
const MAX_DAYS: u32 = 3650;
