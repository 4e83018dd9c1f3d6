//! `asylon serve`, `asylon org add` and `asylon totp`: the HTTP server and its organisations.

use crate::RegistryArgs;
use crate::commands::{actor, data_dir, now, open};
use anyhow::{Context, Result, anyhow};
use asylon_server::accounts::Enrolment;
use asylon_server::{AppState, Config};
use asylon_store::load_settings;
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves the registry of `r` on `listen` until ctrl-c, on `handles` handles (or
/// [`asylon_server::handles_to_open`]).
pub fn serve(
    r: &RegistryArgs,
    listen: SocketAddr,
    secure: bool,
    handles: Option<usize>,
) -> Result<()> {
    let settings = load_settings(&data_dir(r)?)?;
    let config = Config {
        secure,
        ..Config::default()
    };
    run(|| open(r), handles, settings, config, listen, None)
}

/// Runs the server on `handles` handles (or [`asylon_server::handles_to_open`]) that `open`
/// opens on one registry; `banner` is printed once the address is bound.
pub fn run(
    open: impl Fn() -> Result<asylon_store::Registry>,
    handles: Option<usize>,
    settings: asylon_core::law::Settings,
    config: Config,
    listen: SocketAddr,
    banner: Option<String>,
) -> Result<()> {
    let handles = (0..handles.unwrap_or_else(asylon_server::handles_to_open))
        .map(|_| open())
        .collect::<Result<Vec<_>>>()?;
    let state = Arc::new(
        AppState::with_handles(handles, settings, config).map_err(|e| anyhow!(e.body.error))?,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        if let Some(b) = banner {
            say!("{b}")?;
        }
        say!("asylon: serving http://{addr}/api (OpenAPI: http://{addr}/api/openapi.json) and the web UI at http://{addr}/ui/; ctrl-c stops")?;
        asylon_server::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the server stopped")
    })
}

pub fn print_enrolment(e: &Enrolment) -> Result<()> {
    say!(
        "user {}\n  TOTP secret {} (add it to an authenticator, or run `asylon totp {}`)\n  {}",
        e.user,
        e.totp_secret,
        e.totp_secret,
        e.otpauth_url
    )?;
    Ok(())
}

/// Creates an organisation and its first administrator, whose password is read from `env`.
pub fn org_add(r: &RegistryArgs, id: &str, name: &str, admin: &str, env: &str) -> Result<()> {
    let password = zeroize::Zeroizing::new(
        std::env::var(env).map_err(|_| anyhow!("set the administrator's password in ${env}"))?,
    );
    let mut registry = open(r)?;
    let admin = asylon_server::accounts::NewMember {
        org: id,
        name: admin,
        roles: &[],
        password: &password,
    };
    let (_, e) = asylon_server::accounts::add_org(
        &mut registry,
        &actor(r),
        now(),
        name,
        &admin,
        asylon_vault::PasswordCost::default(),
    )
    .map_err(|e| anyhow!(e.body.error))?;
    say!("organisation {id} created")?;
    print_enrolment(&e)?;
    Ok(())
}

/// Prints the current code of a TOTP secret.
pub fn totp(secret: &str) -> Result<()> {
    let t = now().unix_timestamp().max(0) as u64;
    let code = asylon_server::auth::totp_code(secret.trim(), t)
        .ok_or_else(|| anyhow!("not a base32 TOTP secret"))?;
    say!("{code}")?;
    Ok(())
}
