//! Reads what `asylon import persons --timings` prints; shared by the end-to-end tests, which
//! check it, and the import benchmark, which reports it. Not a test target of its own (cargo
//! builds only the files directly under `tests/`).

/// The stage lines after the `timings:` line (`  reading names   0.281 s`), in order, with
/// their CPU seconds; `None` for a stage printed as `n/a` (not measured on this platform or
/// backend). Lines of any other shape are left out.
pub fn stage_times(out: &str) -> Vec<(String, Option<f64>)> {
    out.lines()
        .skip_while(|l| !l.starts_with("timings:"))
        .skip(1)
        .filter_map(|l| {
            let l = l.trim();
            match l.strip_suffix(" s") {
                Some(timed) => {
                    let (stage, secs) = timed.rsplit_once(' ')?;
                    Some((stage.trim().to_string(), Some(secs.parse().ok()?)))
                }
                None => Some((l.strip_suffix("n/a")?.trim().to_string(), None)),
            }
        })
        .collect()
}
