//! Korean person names across scripts. Depends on nothing else in Asylon.
//!
//! - [`hangul`]: syllable decomposition and composition.
//! - [`hanja`]: names written in Hanja read into Hangul (Unihan's readings).
//! - [`romanize`]: Hangul to Revised Romanization, McCune–Reischauer (with and without breves and
//!   apostrophes), the DPRK's practice, and Russian Cyrillic (Kontsevich).
//! - [`synth`]: a generator of realistic synthetic North Korean captives' names in several
//!   scripts and spellings, for demos, tests and benchmarks.

pub mod compare;
pub mod eval;
pub mod hangul;
pub mod hanja;
pub mod key;
pub mod link;
pub mod reader;
pub mod romanize;
pub mod synth;
