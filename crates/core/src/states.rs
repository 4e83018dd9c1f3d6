//! States, by their ISO 3166-1 two-letter codes: the power a captive depends on, a third state
//! he wishes to go to or that receives him, a receiving state's organisation.
//!
//! The table is kept here rather than taken from a crate: the codes are all Asylon needs of ISO
//! 3166 (no names, no subdivisions, no numeric codes), they change a few times a decade, and a
//! test checks the table's order and size.

/// The 249 codes ISO 3166-1 assigns (as of 2024), and XK, which it leaves to users and which
/// the European Union and many states use for Kosovo. In order, for a binary search.
const STATE_CODES: [&str; 250] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// What a state's code must be, to say when one is refused.
pub const STATE_CODE_RULE: &str = "a state's ISO 3166 code, two capital letters such as KP or KR";

/// Whether `code` is a state's ISO 3166-1 code in capitals (`KP`, `KR`, `RU`).
pub fn is_state_code(code: &str) -> bool {
    STATE_CODES.binary_search(&code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_order_without_repeats_and_every_code_is_two_capitals() {
        assert!(STATE_CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(
            STATE_CODES
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn states_are_known_by_their_codes_and_nothing_else() {
        for known in ["AD", "KP", "KR", "RU", "UA", "US", "XK", "ZW"] {
            assert!(is_state_code(known), "{known}");
        }
        for not in [
            "XX", "ZZ", "AA", "UK", "EU", "kp", "Kp", "KPX", "K", "", " KP", "КР",
        ] {
            assert!(!is_state_code(not), "{not:?}");
        }
    }
}
