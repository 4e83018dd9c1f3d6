//! `record`, `person status` and `deadlines`: the law commands.

use crate::RegistryArgs;
use crate::commands::{data_dir, now, open, principal};
use anyhow::Result;
use asylon_core::law::{Command, DeadlineStatus, MovementStatus, WishStatus};
use asylon_store::load_settings;
use std::io::Write as _;
use std::path::Path;

pub fn record(r: &RegistryArgs, file: &Path) -> Result<()> {
    let cmd: Command = crate::commands::read_json(file, "the command", "docs/commands.md")?;
    let p = principal(r)?;
    let settings = load_settings(&data_dir(r)?)?;
    let mut registry = open(r)?;
    let events = registry.act(&p, now(), &settings, &cmd)?;
    for e in events {
        say!("recorded event {}: {} {}", e.seq, e.kind, e.public)?;
    }
    Ok(())
}

pub fn report(r: &RegistryArgs, json: bool) -> Result<()> {
    let settings = load_settings(&data_dir(r)?)?;
    let registry = open(r)?;
    let report = registry.statistics(&principal(r)?, settings.k_anonymity)?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let count = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    say!("captives  {}", count(report.captives))?;
    for t in &report.tables {
        say!("by {}", t.by)?;
        for c in &t.cells {
            say!("  {:<30} {:>8}", c.value, count(c.count))?;
        }
    }
    say!(
        "(-: fewer than {}, or left out so that the others do not tell a smaller group)",
        report.k
    )?;
    Ok(())
}

pub fn notify(r: &RegistryArgs, case: &str, to: &str) -> Result<()> {
    let settings = load_settings(&data_dir(r)?)?;
    let mut registry = open(r)?;
    let made = registry.notify(&principal(r)?, now(), &settings, case, to)?;
    say!("{}", serde_json::to_string_pretty(&made)?)?;
    Ok(())
}

pub fn status(r: &RegistryArgs, case: &str, json: bool) -> Result<()> {
    let settings = load_settings(&data_dir(r)?)?;
    let registry = open(r)?;
    let st = registry.case_status(&principal(r)?, case, &settings, now())?;
    if json {
        say!("{}", serde_json::to_string_pretty(&st)?)?;
        return Ok(());
    }
    let c = &st.case;
    say!(
        "{}  power {}  registered {}",
        c.case,
        c.power,
        c.registered_on
    )?;
    say!("  state        {}", c.custody.describe())?;
    if c.erased {
        say!("  erased       his case is closed: nothing more is recorded about him")?;
    }
    if let Some(end) = &c.end {
        say!("  ended        {}", end.describe())?;
    }
    let flags: Vec<&str> = [
        (c.status_in_doubt, "status in doubt (Art 5)"),
        (c.held_for_proceedings, "held for proceedings"),
        (c.seriously_wounded, "seriously wounded"),
        (c.escaped, "escaped"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect();
    if !flags.is_empty() {
        say!("  flags        {}", flags.join(", "))?;
    }
    let wish = match &st.wish_status {
        WishStatus::None => "none recorded".to_string(),
        WishStatus::Stated(w) => format!("stated: {} (not verified)", w.describe()),
        WishStatus::Verified(w) => format!("verified: {}", w.describe()),
        WishStatus::Contested(w) => {
            format!("changed at the latest interview: now {}", w.describe())
        }
        WishStatus::Unreadable => "unreadable (erased)".to_string(),
    };
    say!("  wish         {wish}")?;
    for i in c.interviews_in_order() {
        say!(
            "    interview {}  {}{}{}",
            i.on,
            i.org,
            if i.private { ", private" } else { "" },
            if i.own_interpreter {
                ", own interpreter"
            } else {
                ""
            }
        )?;
    }
    if let Some(why) = &st.protected_from_return {
        say!("  G1           protected from return: {why}")?;
    }
    for (state, cond) in &c.acceptances {
        say!(
            "  accepted by  {state}{}",
            cond.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
        )?;
    }
    for (to, classes) in &c.consents {
        let cl: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
        say!("  consent      {to}: {}", cl.join(", "))?;
    }
    for m in c.movements.values() {
        let status = match &m.status {
            MovementStatus::Proposed => "proposed".to_string(),
            MovementStatus::Approved => "approved".to_string(),
            MovementStatus::Suspended { guard, reason } => {
                format!("suspended ({guard:?}): {reason}")
            }
            MovementStatus::Withdrawn { reason } => format!("withdrawn: {reason}"),
            MovementStatus::Completed => "completed".to_string(),
        };
        say!("  movement     {}  {}  {status}", m.id, m.kind.describe())?;
    }
    for d in &st.deadlines {
        say!("  deadline     {}", deadline_text(d))?;
    }
    Ok(())
}

fn deadline_text(d: &asylon_core::law::Deadline) -> String {
    let status = match &d.status {
        DeadlineStatus::Due => "due".to_string(),
        DeadlineStatus::Overdue => "OVERDUE".to_string(),
        DeadlineStatus::Waived(why) => format!("waived: {why}"),
    };
    format!(
        "{} {:<20} due {}  {status}",
        d.case,
        serde_json::to_value(d.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        d.due
    )
}

pub fn deadlines(r: &RegistryArgs, overdue: bool, json: bool) -> Result<()> {
    let settings = load_settings(&data_dir(r)?)?;
    let registry = open(r)?;
    let all: Vec<_> = registry
        .deadlines(&principal(r)?, &settings, now())?
        .into_iter()
        .filter(|d| !overdue || d.status == DeadlineStatus::Overdue)
        .collect();
    let mut out = crate::output::stdout();
    if json {
        // A duty at a time: at a million captives the answer lists two million, and made into
        // one string first it took 300 MB more.
        let mut array = crate::output::JsonArray::new(&mut out);
        for d in &all {
            array.push(d)?;
        }
        array.finish()?;
    } else {
        for d in &all {
            writeln!(out, "{}", deadline_text(d))?;
        }
        writeln!(out, "{} deadlines", all.len())?;
    }
    Ok(out.flush()?)
}
