//! `asylon`: the command-line interface to a registry.

/// `println!` that gives standard output's error back instead of panicking: a reader may close
/// it early (`asylon … | head`), and that ends a command quietly (see [`output::closed_output`]).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

/// [`say!`] without the line break (`print!`).
macro_rules! say_on {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)
    }};
}

mod check;
mod commands;
mod csvfile;
mod demo;
mod import;
mod law;
mod names;
mod output;
mod passbar;
mod serve;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use csvfile::Source;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "asylon",
    version,
    about = "Protected registry of prisoners of war"
)]
struct Cli {
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the registry is and how to unlock it.
#[derive(Args, Clone)]
pub struct RegistryArgs {
    /// Data directory of the registry.
    #[arg(long, global = true, env = "ASYLON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Key file holding the key-encryption key (default: DATA_DIR/registry.key).
    #[arg(long, global = true, env = "ASYLON_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Name of an environment variable holding the passphrase, instead of a key file.
    #[arg(long, global = true, conflicts_with = "key_file")]
    pub passphrase_env: Option<String>,
    /// Keep the records in PostgreSQL (postgres://user@host/db) instead of SQLite files in the
    /// data directory; the key file and settings stay in the data directory.
    #[arg(long, global = true, env = "ASYLON_DATABASE_URL")]
    pub database: Option<String>,
    /// The PostgreSQL schema of this registry (its key store is in SCHEMA_keys).
    #[arg(
        long,
        global = true,
        env = "ASYLON_DB_SCHEMA",
        default_value = "asylon"
    )]
    pub db_schema: String,
    /// Who is acting (until accounts exist: the operating-system user).
    #[arg(long, global = true, env = "ASYLON_USER")]
    pub user: Option<String>,
    /// The acting user's organisation: detaining, neutral, or receiving:XX.
    #[arg(long, global = true, env = "ASYLON_ORG", default_value = "detaining")]
    pub org: String,
    /// The acting user's roles, comma-separated (admin, registrar, interviewer, medical, legal,
    /// liaison, auditor, analyst).
    #[arg(
        long,
        global = true,
        env = "ASYLON_ROLES",
        default_value = "registrar",
        value_delimiter = ','
    )]
    pub roles: Vec<String>,
    /// How long, in seconds, an erasure waits for another process reading the key store from
    /// before it (a backup being copied) before it says that the key store's files may still
    /// hold the destroyed keys (see `purge-keys`).
    #[arg(
        long,
        global = true,
        env = "ASYLON_PURGE_WAIT",
        value_name = "SECS",
        default_value_t = asylon_store::PURGE_WAIT.as_secs()
    )]
    pub purge_wait: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new registry: database, key-encryption key and signing key.
    Init,
    /// Register, show, list, correct and erase captives.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Register many captives from a CSV file.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Read the event log.
    #[command(subcommand)]
    Event(EventCommand),
    /// Checkpoints, verification and proofs of the Merkle log.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Rebuild the projection (current state) from the events.
    Rebuild,
    /// Remove from the key store's files every copy of the keys erasures destroyed, when an
    /// erasure said another process held that back or `ledger verify` says a purge is due (it
    /// waits for such processes as an erasure does; on PostgreSQL it rewrites the whole key
    /// store).
    PurgeKeys,
    /// Write a consistent copy of the registry (ciphertext only, no key) while it stays in use;
    /// with --keys-out, a copy of the key store too (keep it like the key file).
    Backup {
        /// The file to write the registry's copy to; it must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also write a copy of the key store (wrapped data keys, blind index) to this file,
        /// which must not exist.
        #[arg(long, value_name = "FILE")]
        keys_out: Option<PathBuf>,
    },
    /// Restore a registry backup with a key store (--keys: a key store backup or the current
    /// keys.db) into the (new) --data-dir, with the registry's key file or passphrase; verify it.
    Restore {
        /// The registry backup (written by `asylon backup --out`).
        file: PathBuf,
        /// The key store to restore it with: a backup of it (`--keys-out`) or the current
        /// DATA_DIR/keys.db, whose erasures then hold for the restored registry too.
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
    },
    /// Move a registry between backends (a data directory for SQLite, or a postgres:// URL with
    /// --db-schema), its log intact: the copy is verified and must have the same root.
    MigrateStore {
        /// Where the registry is now: a data directory, or a postgres:// URL.
        #[arg(long, value_name = "DIR_OR_URL")]
        from: String,
        /// Where to copy it: a data directory, or a postgres:// URL; it must hold no registry.
        #[arg(long, value_name = "DIR_OR_URL")]
        to: String,
    },
    /// Record a lifecycle event, interview, acceptance, consent, movement or exchange-list step:
    /// a JSON command (a file, or - for standard input), decided by the guards G1–G8.
    Record {
        /// The JSON command (docs/commands.md): a file, or - for standard input.
        file: PathBuf,
    },
    /// Counts of captives by the power they depend on, by state and by place of custody; no
    /// count smaller than the `k_anonymity` setting is given, nor any the others would tell.
    Report {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Every open deadline (capture cards, notifications, health updates, commission decisions).
    Deadlines {
        /// Only the deadlines already missed.
        #[arg(long)]
        overdue: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a demo registry (three organisations, users for every role, synthetic captives in
    /// every state, the motivating case) and serve it.
    Demo {
        /// How many synthetic captives.
        #[arg(long, default_value_t = 300)]
        count: usize,
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Build the registry and stop, without serving it.
        #[arg(long)]
        no_serve: bool,
    },
    /// Serve the registry's HTTP API.
    Serve {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The server is reached over TLS (directly or through a proxy): Secure cookies, HSTS.
        #[arg(long)]
        secure: bool,
        /// Handles to open on the registry, each with its own connections (two to PostgreSQL
        /// each): as many requests run at once. Default: one per core, at least two.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
        handles: Option<u16>,
    },
    /// Organisations and their first administrators.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Print the current code of a TOTP secret (for the demo and for scripts).
    Totp {
        /// The secret, in base32 as the demo prints it.
        secret: String,
    },
    /// Link two lists of names (any scripts): for each left record the best right records.
    /// Each CSV has the header id,name or id,name,date_of_birth; the output has
    /// left_id,right_id,score (match probability), best first.
    Match {
        /// The list to find matches for (CSV).
        left: PathBuf,
        /// The list to find them in (CSV).
        right: PathBuf,
        /// The encoding of the left list when it is not UTF-8 (a WHATWG label: euc-kr,
        /// windows-1251, …; see `import persons --help`).
        #[arg(long, value_name = "LABEL", value_parser = csvfile::encoding)]
        left_encoding: Option<&'static encoding_rs::Encoding>,
        /// The encoding of the right list when it is not UTF-8.
        #[arg(long, value_name = "LABEL", value_parser = csvfile::encoding)]
        right_encoding: Option<&'static encoding_rs::Encoding>,
        /// Write the matches to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// How many right records at most for each left one.
        #[arg(long, default_value_t = 1)]
        top: usize,
    },
    /// Names across scripts: phoneme keys and the evaluation over shared name data.
    #[command(subcommand)]
    Names(NamesCommand),
    /// Generate synthetic data for tests and benchmarks.
    #[command(subcommand)]
    Synth(SynthCommand),
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organisation with a new key pair and its first administrator.
    Add {
        /// Its id: detaining, neutral, or receiving:XX.
        id: String,
        /// The organisation's name as people know it.
        #[arg(long)]
        name: String,
        /// User name of its first administrator.
        #[arg(long)]
        admin: String,
        /// Environment variable holding the administrator's password.
        #[arg(long, default_value = "ASYLON_ADMIN_PASSWORD")]
        password_env: String,
    },
}

#[derive(Subcommand)]
enum PersonCommand {
    /// Register one captive from JSON particulars (a file, or - for standard input).
    Register {
        /// The particulars as JSON (docs/particulars.md): a file, or - for standard input.
        file: PathBuf,
        /// Register him even though a captive of the same power holds the same service
        /// number: you have checked that they are two men (otherwise refused, naming him).
        #[arg(long)]
        shared_service_number: bool,
    },
    /// Show one captive, opening his sealed classes (the read is recorded).
    Show {
        /// His case number (AS-000123, or as-123).
        #[arg(value_parser = case_arg)]
        case: String,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "particulars")]
        json: bool,
        /// Print his particulars in the JSON `person amend` takes, with the event they are read
        /// from (`from_event`), to be edited and given to `person amend`.
        #[arg(long)]
        particulars: bool,
    },
    /// Correct a captive's particulars: give his whole record as it should now read, in the
    /// JSON `person register` takes and with the event it corrects (`from_event`): start from
    /// `person show CASE --particulars`, which gives both. Refused if his particulars were
    /// corrected again since they were read. Recorded as a new event with the reason; the
    /// record before it stays in the log.
    Amend {
        /// His case number (AS-000123, or as-123).
        #[arg(value_parser = case_arg)]
        case: String,
        /// The corrected particulars as JSON (docs/particulars.md): a file, or - for standard
        /// input.
        file: PathBuf,
        /// Why the record is corrected (1 to 500 characters); recorded in the log, seen by
        /// every organisation involved in the case, so it names no particulars.
        #[arg(long)]
        reason: String,
        /// Correct him even though a captive of the same power holds the service number now
        /// given: you have checked that they are two men (otherwise refused, naming him).
        #[arg(long)]
        shared_service_number: bool,
    },
    /// His derived state: lifecycle, flags, wish status, acceptances, consents, movements,
    /// deadlines.
    Status {
        /// His case number (AS-000123, or as-123).
        #[arg(value_parser = case_arg)]
        case: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make his Art 122 notification for the neutral agency or the power he depends on, and
    /// record that it was sent: the guards decide what it holds (G6: nothing of his identity,
    /// family or statements goes to the power of origin while G1 protects him). Prints it as
    /// JSON, the form it is forwarded in.
    Notify {
        /// His case number (AS-000123, or as-123).
        #[arg(value_parser = case_arg)]
        case: String,
        /// Its recipient.
        #[arg(long, value_enum)]
        to: Recipient,
    },
    /// Find captives whose sealed names match NAME (any script), through the blind index.
    Search {
        /// A name in any script, surname first.
        name: String,
        /// At most this many, best first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List captives (public facts only).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Crypto-shred a captive: destroy his data keys so his sealed data is unreadable everywhere.
    Erase {
        /// His case number (AS-000123, or as-123).
        #[arg(value_parser = case_arg)]
        case: String,
        /// Why he is erased (1 to 500 characters); recorded in the log.
        #[arg(long)]
        reason: String,
    },
}

/// `--encoding`, for the commands that read one CSV file.
#[derive(Args, Clone, Copy)]
struct CsvEncoding {
    /// The encoding of the file when it is not UTF-8 (a WHATWG label: euc-kr for Korean
    /// Excel's "CSV", windows-1251 for Russian or Ukrainian Excel's, koi8-u, …). UTF-16 with its
    /// byte-order mark is read without it.
    #[arg(long, value_name = "LABEL", value_parser = csvfile::encoding)]
    encoding: Option<&'static encoding_rs::Encoding>,
}

impl CsvEncoding {
    fn of(self, path: &std::path::Path) -> Source<'_> {
        Source {
            path,
            encoding: self.encoding,
            option: "--encoding",
        }
    }
}

#[derive(Subcommand)]
enum ImportCommand {
    /// CSV with header external_id,names,date_of_birth,rank,service_number,power,captured_on,captured_at,
    /// and any of the optional columns (docs/particulars.md):
    /// place_of_birth,unit,father_first_name,mother_maiden_name,next_of_kin,correspondence_address,home_address.
    Persons {
        /// The CSV file (docs/particulars.md), or a pipe.
        file: PathBuf,
        #[command(flatten)]
        encoding: CsvEncoding,
        /// Rows kept in memory, as validated, between the two passes (a few hundred bytes
        /// each); rows past them are read and validated again. Lower it to import in less memory.
        /// A pipe cannot be read again: all its rows are kept.
        #[arg(long, default_value_t = import::KEPT_ROWS)]
        keep_rows: u64,
        /// Print, at the end, the CPU time each stage of the import took (validating, reading
        /// names, sealing, storing keys, appending to the log, folding its WAL).
        #[arg(long)]
        timings: bool,
        /// Only check the file: every row validated and every problem told, as an import
        /// would, and what it would register and skip said; nothing is registered.
        #[arg(long, conflicts_with = "timings")]
        check: bool,
        /// Write every problem found in the file to FILE as CSV (line,problem); the terminal
        /// shows the first 200. A valid file leaves it with its header alone.
        #[arg(long, value_name = "FILE")]
        errors: Option<PathBuf>,
        /// Register rows whose service number another row, or a registered captive, has for
        /// the same power: you have checked that they are other men (otherwise each such row is
        /// a problem of the file, naming the other).
        #[arg(long)]
        shared_service_number: bool,
    },
}

#[derive(Subcommand)]
enum EventCommand {
    /// Every event of the log in order, or only those about one person.
    List {
        /// Only the events about this case number.
        #[arg(long, value_name = "CASE", value_parser = case_arg)]
        person: Option<String>,
        /// Print JSON (an array of events) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Print a signed checkpoint (size, root, time, key id, signature) as JSON.
    Checkpoint,
    /// Recompute the log, check every event, the signed head and the projection; with
    /// --checkpoint, prove the log extends that earlier checkpoint.
    Verify {
        /// An earlier checkpoint (from `ledger checkpoint`) the log must extend.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Print an inclusion proof for an event (by sequence number) or a person's registration.
    Prove {
        /// A sequence number (42) or a case number (AS-000123, or as-123).
        #[arg(value_parser = case_arg)]
        target: String,
        /// A checkpoint the proof is to be checked against: the proof is made in the log as it
        /// was at its size (default: the log now).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Print a consistency proof that the log (as of --to, or now) extends an earlier
    /// checkpoint, for a party that keeps checkpoints to check it with `ledger check`.
    Consistency {
        /// The earlier checkpoint (from `ledger checkpoint`).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The later checkpoint the proof is to end at (default: the log now).
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Check a checkpoint's signature, and a proof against it, from the files alone: no
    /// registry, no key. For the neutral agency and receiving states that keep checkpoints.
    Check {
        /// The checkpoint (from `ledger checkpoint` or GET /api/ledger/checkpoint).
        checkpoint: PathBuf,
        /// The key id of the registry's signing key, as known from an earlier checkpoint: one
        /// signed by any other key is refused.
        #[arg(long, value_name = "KEY_ID")]
        key_id: Option<String>,
        /// An inclusion proof (`ledger prove --checkpoint`) of an event in the checkpoint's log.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["extends", "proof"])]
        inclusion: Option<PathBuf>,
        /// An earlier checkpoint the checkpoint's log must extend (with --proof).
        #[arg(long, value_name = "FILE", requires = "proof")]
        extends: Option<PathBuf>,
        /// The consistency proof (`ledger consistency`) from --extends to the checkpoint.
        #[arg(long, value_name = "FILE", requires = "extends")]
        proof: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum NamesCommand {
    /// Print the phoneme keys a name produces, for checking a match by hand.
    Keys {
        /// A name in any script, surname first.
        name: String,
    },
    /// Groups of records in one list that are probably the same person.
    Dedupe {
        /// A CSV with the header id,name or id,name,date_of_birth.
        file: PathBuf,
        #[command(flatten)]
        encoding: CsvEncoding,
    },
    /// Recall and precision on the name data in DIR, with a Jaro–Winkler baseline beside.
    Eval {
        /// The directory of the name data.
        #[arg(long, default_value = "../shared/eval/names")]
        dir: PathBuf,
        /// The match probability from which two names are taken as the same person.
        #[arg(long, default_value_t = names::THRESHOLD)]
        threshold: f64,
        /// Print the queries of the tuning part that were missed.
        #[arg(long)]
        show_misses: bool,
    },
}

#[derive(Subcommand)]
enum SynthCommand {
    /// Write two lists to link and the truth (left.csv, right.csv, truth.csv, and the same lists
    /// romanized into surname and given-name columns for other linkers: left_latin.csv,
    /// right_latin.csv) into DIR.
    LinkLists {
        /// Records in the right list.
        #[arg(long, default_value_t = 1_000_000)]
        right: usize,
        /// Records in the left list.
        #[arg(long, default_value_t = 100_000)]
        left: usize,
        /// Seed of the generator: the same seed writes the same lists.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// The directory to write them into.
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
    /// Write an import CSV of synthetic captives to standard output or --out.
    Persons {
        /// How many captives.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Seed of the generator: the same seed writes the same file.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Whom an Art 122 notification is for.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Recipient {
    /// The neutral agency (the ICRC's Central Tracing Agency or a protecting power).
    Agency,
    /// The power he depends on.
    Origin,
}

impl Recipient {
    fn as_str(self) -> &'static str {
        match self {
            Self::Agency => "agency",
            Self::Origin => "origin",
        }
    }
}

/// A case number given as an argument, as the registry writes it however it was typed (`as-17`
/// is `AS-000017`); anything else as typed, for the command to say it knows no such case (or,
/// for `ledger prove`, to read as a sequence number).
fn case_arg(typed: &str) -> Result<String, std::convert::Infallible> {
    Ok(asylon_store::case_as_typed(typed))
}

fn run(cli: Cli) -> Result<()> {
    let r = &cli.registry;
    match cli.command {
        Command::Init => commands::init(r),
        Command::Person(PersonCommand::Register {
            file,
            shared_service_number,
        }) => commands::register(
            r,
            &file,
            asylon_store::SharedNumbers::allowed_if(shared_service_number),
        ),
        Command::Person(PersonCommand::Show {
            case,
            json,
            particulars,
        }) => commands::show(r, &case, json, particulars),
        Command::Person(PersonCommand::Amend {
            case,
            file,
            reason,
            shared_service_number,
        }) => commands::amend(
            r,
            &case,
            (
                &file,
                asylon_store::SharedNumbers::allowed_if(shared_service_number),
            ),
            &reason,
        ),
        Command::Person(PersonCommand::List { json }) => commands::list(r, json),
        Command::Person(PersonCommand::Search { name, limit, json }) => {
            commands::search(r, &name, limit, json)
        }
        Command::Person(PersonCommand::Erase { case, reason }) => {
            commands::erase(r, &case, &reason)
        }
        Command::Import(ImportCommand::Persons {
            file,
            encoding,
            keep_rows,
            timings,
            check,
            errors,
            shared_service_number,
        }) => {
            let file = encoding.of(&file);
            let errors = errors.as_deref();
            let shared = asylon_store::SharedNumbers::allowed_if(shared_service_number);
            match check {
                true => import::check_persons(r, file, errors, shared),
                false => import::persons(r, file, (keep_rows, timings), errors, shared),
            }
        }
        Command::Event(EventCommand::List { person, json }) => {
            commands::events(r, person.as_deref(), json)
        }
        Command::Ledger(LedgerCommand::Checkpoint) => commands::checkpoint(r),
        Command::Ledger(LedgerCommand::Verify { checkpoint }) => {
            commands::verify(r, checkpoint.as_deref())
        }
        Command::Ledger(LedgerCommand::Prove { target, checkpoint }) => {
            commands::prove(r, &target, checkpoint.as_deref())
        }
        Command::Ledger(LedgerCommand::Consistency { from, to }) => {
            commands::consistency(r, &from, to.as_deref())
        }
        Command::Ledger(LedgerCommand::Check {
            checkpoint,
            key_id,
            inclusion,
            extends,
            proof,
        }) => {
            let against = match (inclusion.as_deref(), extends.as_deref(), proof.as_deref()) {
                (Some(p), _, _) => check::Against::Inclusion(p),
                (None, Some(earlier), Some(proof)) => check::Against::Extends { earlier, proof },
                _ => check::Against::Nothing,
            };
            check::check(&checkpoint, key_id.as_deref(), against)
        }
        Command::Rebuild => commands::rebuild(r),
        Command::PurgeKeys => commands::purge_keys(r),
        Command::Backup { out, keys_out } => commands::backup(r, &out, keys_out.as_deref()),
        Command::Restore { file, keys } => commands::restore(r, &file, &keys),
        Command::MigrateStore { from, to } => commands::migrate_store(r, &from, &to),
        Command::Record { file } => law::record(r, &file),
        Command::Deadlines { overdue, json } => law::deadlines(r, overdue, json),
        Command::Report { json } => law::report(r, json),
        Command::Person(PersonCommand::Status { case, json }) => law::status(r, &case, json),
        Command::Person(PersonCommand::Notify { case, to }) => law::notify(r, &case, to.as_str()),
        Command::Demo {
            count,
            listen,
            no_serve,
        } => demo::demo(r, count, (!no_serve).then_some(listen)),
        Command::Serve {
            listen,
            secure,
            handles,
        } => serve::serve(r, listen, secure, handles.map(usize::from)),
        Command::Org(OrgCommand::Add {
            id,
            name,
            admin,
            password_env,
        }) => serve::org_add(r, &id, &name, &admin, &password_env),
        Command::Totp { secret } => serve::totp(&secret),
        Command::Names(NamesCommand::Keys { name }) => names::keys(&name),
        Command::Names(NamesCommand::Dedupe { file, encoding }) => {
            names::dedupe(encoding.of(&file))
        }
        Command::Match {
            left,
            right,
            left_encoding,
            right_encoding,
            out,
            top,
        } => names::matches(
            Source {
                path: &left,
                encoding: left_encoding,
                option: "--left-encoding",
            },
            Source {
                path: &right,
                encoding: right_encoding,
                option: "--right-encoding",
            },
            out.as_deref(),
            top,
        ),
        Command::Names(NamesCommand::Eval {
            dir,
            threshold,
            show_misses,
        }) => names::eval(&dir, threshold, show_misses),
        Command::Synth(SynthCommand::LinkLists {
            right,
            left,
            seed,
            out_dir,
        }) => names::link_lists(right, left, seed, &out_dir),
        Command::Synth(SynthCommand::Persons { count, seed, out }) => {
            import::synth_persons(count, seed, out.as_deref())
        }
    }
}

/// Keeps this process's memory out of core dumps and from other processes of the same user
/// (ptrace, /proc/PID/mem). It holds the key-encryption key, and the particulars it registers,
/// imports or shows in plaintext: a crash would write them to disk (systemd-coredump keeps
/// cores under /var/lib/systemd/coredump), where the registry's encryption does not reach, and
/// wiping them when dropped cannot help while they are in use. Asylon does not run without it.
///
/// And keeps every file it creates to its owner (file-creation mask 077): the data directory,
/// the databases and their WALs (SQLite gives those its database's mode), backups, the key
/// store's copies, `match` and `names dedupe` results (names in plaintext) and the demo's
/// logins. The sealed classes are encrypted, but the public part of each record (where and
/// when he was taken, his power, his movements, who read what) and the blind index are not,
/// and a default mask of 022 let every account on the machine read them.
#[cfg(target_os = "linux")]
fn keep_private() -> Result<()> {
    use anyhow::Context;
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    setrlimit(Resource::Core, none).context("cannot turn core dumps off")?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .context("cannot keep the process's memory from other processes")?;
    rustix::process::umask(rustix::fs::Mode::RWXG | rustix::fs::Mode::RWXO);
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn keep_private() -> Result<()> {
    Ok(())
}

fn main() -> ExitCode {
    match keep_private().and_then(|()| run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        // Its reader has what it wanted (`asylon event list | head`).
        Err(e) if output::closed_output(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc rather than the system allocator: an import hands every record from thread to
/// thread (read, sealed, written), and glibc's allocator is slow to take memory back across
/// threads. Importing 100,000 captives, `scripts/ab-import` against a build without these two
/// lines, seven rounds: user CPU 2.70 -> 1.98 s, wall 2.04 -> 1.55 s. Its `override` feature (see
/// Cargo.toml) gives SQLite's allocations, made through `malloc`, to mimalloc as well.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every argument of the CLI, with the path of commands leading to it,
    /// that `--help` prints without a word about it.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_name() != "help" && sub.get_about().is_none() {
                out.push(sub_path.clone());
            }
            undocumented(sub, &sub_path, out);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_keeps_its_memory_out_of_core_dumps_and_its_files_to_its_owner() {
        use rustix::fs::Mode;
        use rustix::process::{DumpableBehavior, Resource, dumpable_behavior, getrlimit, umask};
        super::keep_private().unwrap();
        assert_eq!(getrlimit(Resource::Core).maximum, Some(0));
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
        // umask can only be read by setting it: set it back at once.
        let mask = umask(Mode::empty());
        umask(mask);
        assert_eq!(mask, Mode::RWXG | Mode::RWXO);
    }

    #[test]
    fn every_command_and_argument_says_what_it_is_for() {
        let cmd = super::Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        undocumented(&cmd, "asylon", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
