//! Keys and sealing.
//!
//! - The key-encryption key ([`Kek`]) never enters the database: it lives in a key file, or is
//!   derived from a passphrase with Argon2id.
//! - Every person has one data key per sealed class ([`DataKey`]), stored only wrapped by the KEK.
//!   Destroying the wrapped key crypto-shreds that class of that person.
//! - Sealed payloads are XChaCha20-Poly1305 with associated data that binds the person, the class
//!   and the event, so a ciphertext moved to another row or person fails to open.
//! - Each event carries a MAC over its position and leaf hash under a key derived from the KEK, so
//!   an edit to the database by someone without the KEK is found and named.
//! - Checkpoints are signed with Ed25519; the signing seed is itself wrapped by the KEK.

use chacha20poly1305::aead::{Aead, AeadInOut, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::Rng as _;
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

mod org;
pub use org::{
    AccountKey, MemberKey, OrgSecret, PasswordCost, hash_password, seal_to_org, verify_password,
};

const NONCE_LEN: usize = 24;
/// Poly1305's tag, after the ciphertext.
const TAG_LEN: usize = 16;
const KEY_FILE_HEADER: &str = "asylon-kek-v1";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot read key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(
        "the key does not open this registry (wrong key file or wrong passphrase); nothing was changed"
    )]
    WrongKey,
    #[error("sealed data is damaged or does not belong here ({0})")]
    Corrupt(&'static str),
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// Random bytes from the thread's CSPRNG (ChaCha, seeded and periodically reseeded from the
/// operating system). One system call per key or nonce made bulk imports pay a syscall three
/// times per captive for no gain in strength.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// AEAD-encrypts `plain` under `key` with a fresh random nonce; output is `nonce || ciphertext`.
fn encrypt(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    encrypt_with_nonce(key, random(), aad, plain)
}

/// nonce ‖ ciphertext ‖ tag, encrypted in the one buffer it is returned in: one allocation per
/// seal rather than two, and the plaintext copied in is overwritten by its ciphertext.
fn encrypt_with_nonce(key: &[u8; 32], nonce: [u8; NONCE_LEN], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let (_, msg) = out.split_at_mut(NONCE_LEN);
    // Encryption with a valid key and in-memory buffers only fails on absurd lengths (> 256 GiB),
    // which no payload here approaches; an empty output would then fail to open, loudly.
    match cipher.encrypt_inout_detached(&XNonce::from(nonce), aad, msg.into()) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            out
        }
        Err(_) => Vec::new(),
    }
}

fn decrypt(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).ok()?;
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(&nonce, Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    Keyed::new(key).mac(parts)
}

/// HMAC-SHA-256 under one key, its inner and outer key blocks hashed once. The event MACs and
/// the blind index hash hundreds of thousands of short messages under one key each, and
/// setting the key up again for every message doubled their work. The kept state is as secret
/// as the key: it is two SHA-256 states, which sha2's `zeroize` feature wipes on drop (checked
/// at compile time below), in a block buffer that digest's `zeroize` feature wipes.
struct Keyed(Hmac<Sha256>);

impl Keyed {
    fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length: this cannot fail.
        let init = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key);
        Self(init.unwrap_or_else(|_| <Hmac<Sha256> as hmac::KeyInit>::new(&Default::default())))
    }

    /// The MAC of `parts`, each preceded by its length so that no two lists of parts collide.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

/// Fails to compile if a cipher, which holds its key, is not wiped on drop (chacha20poly1305's
/// `zeroize` feature).
const _: fn(&XChaCha20Poly1305) -> &dyn zeroize::ZeroizeOnDrop = |c| c;

/// Fails to compile if the SHA-256 state kept in [`Keyed`] is not wiped on drop.
const _: fn(&sha2::block_api::Sha256VarCore) -> &dyn hmac::digest::zeroize::ZeroizeOnDrop = |c| c;

/// Argon2id parameters for a passphrase-derived KEK, stored (not secret) in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub salt: [u8; 16],
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes: well above the OWASP minimum, about a second on a small server.
    pub fn new_random() -> Self {
        Self {
            salt: random(),
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }

    pub fn encode(&self) -> String {
        format!(
            "argon2id$m={},t={},p={}${}",
            self.m_kib,
            self.t,
            self.p,
            hex::encode(self.salt)
        )
    }

    pub fn decode(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("argon2id$")?;
        let (params, salt) = rest.split_once('$')?;
        let mut m_kib = None;
        let mut t = None;
        let mut p = None;
        for kv in params.split(',') {
            let (k, v) = kv.split_once('=')?;
            let v: u32 = v.parse().ok()?;
            match k {
                "m" => m_kib = Some(v),
                "t" => t = Some(v),
                "p" => p = Some(v),
                _ => return None,
            }
        }
        Some(Self {
            salt: hex::decode(salt).ok()?.try_into().ok()?,
            m_kib: m_kib?,
            t: t?,
            p: p?,
        })
    }
}

/// The key-encryption key. Zeroized on drop; never written to the database.
pub struct Kek(Zeroizing<[u8; 32]>);

impl Kek {
    pub fn generate() -> Self {
        Self(Zeroizing::new(random()))
    }

    /// An explicit copy, for a sealing thread; both copies are zeroized when dropped.
    pub fn duplicate(&self) -> Self {
        Self(Zeroizing::new(*self.0))
    }

    pub fn from_passphrase(passphrase: &[u8], params: &KdfParams) -> Result<Self, VaultError> {
        let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
            .map_err(|e| VaultError::Kdf(e.to_string()))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, &params.salt, out.as_mut())
            .map_err(|e| VaultError::Kdf(e.to_string()))?;
        Ok(Self(out))
    }

    /// Writes the key to a new file readable by its owner only; refuses to overwrite.
    pub fn write_key_file(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path)?;
        let line = Zeroizing::new(format!("{KEY_FILE_HEADER} {}\n", hex::encode(*self.0)));
        f.write_all(line.as_bytes())?;
        f.sync_all()
    }

    pub fn read_key_file(path: &Path) -> Result<Self, VaultError> {
        let err = |reason: &str| VaultError::KeyFile {
            path: path.display().to_string(),
            reason: reason.to_string(),
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(&e.to_string()))?);
        let hex_key = text
            .trim()
            .strip_prefix(KEY_FILE_HEADER)
            .map(str::trim)
            .ok_or_else(|| err("not an Asylon key file (missing header)"))?;
        let bytes = Zeroizing::new(hex::decode(hex_key).map_err(|_| err("key is not hex"))?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| err("key is not 32 bytes"))?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// A value stored in the registry that only the right KEK reproduces, so a wrong key or
    /// passphrase is refused up front instead of failing deep inside a read.
    pub fn check_value(&self) -> [u8; 32] {
        hmac(self.0.as_ref(), &[b"asylon/kek-check/v1"])
    }

    pub fn matches(&self, stored_check: &[u8]) -> bool {
        ct_eq(&self.check_value(), stored_check)
    }

    fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac(self.0.as_ref(), &[b"asylon/derive/v1", label]))
    }

    pub fn event_mac_key(&self) -> EventMacKey {
        EventMacKey(Keyed::new(self.derive(b"event-mac").as_ref()))
    }

    pub fn account_key(&self) -> AccountKey {
        AccountKey(self.derive(b"accounts"))
    }

    pub fn blind_index_key(&self) -> BlindIndexKey {
        BlindIndexKey(Keyed::new(self.derive(b"blind-index").as_ref()))
    }

    /// Wraps a data key for (person, class).
    pub fn wrap(&self, label: &[u8], key: &DataKey) -> Vec<u8> {
        encrypt(&self.0, &wrap_aad(label), key.0.as_ref())
    }

    pub fn unwrap_key(&self, label: &[u8], wrapped: &[u8]) -> Result<DataKey, VaultError> {
        let plain = decrypt(&self.0, &wrap_aad(label), wrapped)
            .ok_or(VaultError::Corrupt("wrapped data key"))?;
        let key: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Corrupt("wrapped data key length"))?;
        Ok(DataKey(Zeroizing::new(key)))
    }

    pub fn wrap_signer(&self, signer: &Signer) -> Vec<u8> {
        encrypt(&self.0, b"asylon/signing-seed/v1", &signer.0.to_bytes())
    }

    pub fn unwrap_signer(&self, wrapped: &[u8]) -> Result<Signer, VaultError> {
        let plain = decrypt(&self.0, b"asylon/signing-seed/v1", wrapped)
            .ok_or(VaultError::Corrupt("wrapped signing key"))?;
        let seed: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Corrupt("signing seed length"))?;
        Ok(Signer(SigningKey::from_bytes(&seed)))
    }
}

fn wrap_aad(label: &[u8]) -> Vec<u8> {
    let mut aad = b"asylon/data-key/v1|".to_vec();
    aad.extend_from_slice(label);
    aad
}

/// Constant-time equality of secrets (MACs, check values, token hashes, CSRF tokens), written
/// out because it is four lines and not worth a dependency.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One person's key for one sealed class.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> Self {
        Self(Zeroizing::new(random()))
    }

    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        encrypt(&self.0, aad, plain)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        decrypt(&self.0, aad, sealed).ok_or(VaultError::Corrupt("sealed payload"))
    }
}

/// Associated data for a sealed payload: binds it to its person, class and event.
pub fn seal_aad(person: &str, class: &str, event_id: &str) -> Vec<u8> {
    // Joined rather than format!ted: made for every part sealed or opened.
    ["asylon/seal/v1|", person, "|", class, "|", event_id]
        .concat()
        .into_bytes()
}

/// Label under which a data key is wrapped: binds it to its person and class.
pub fn key_label(person: &str, class: &str) -> Vec<u8> {
    [person, "|", class].concat().into_bytes()
}

pub struct EventMacKey(Keyed);

impl EventMacKey {
    pub fn mac(&self, seq: u64, leaf: &[u8; 32]) -> [u8; 32] {
        self.0.mac(&[&seq.to_be_bytes(), leaf])
    }

    pub fn verify(&self, seq: u64, leaf: &[u8; 32], tag: &[u8]) -> bool {
        ct_eq(&self.mac(seq, leaf), tag)
    }
}

/// Keyed hashes for searching sealed names: equal inputs give equal tokens, and without the key
/// a token says nothing about its input (no dictionary of names can be hashed against it).
pub struct BlindIndexKey(Keyed);

impl BlindIndexKey {
    /// A 16-byte token for `text`.
    pub fn token(&self, text: &str) -> [u8; 16] {
        let full = self.0.mac(&[b"asylon/blind/v1", text.as_bytes()]);
        let mut out = [0u8; 16];
        out.copy_from_slice(full.get(..16).unwrap_or(&[0u8; 16]));
        out
    }
}

/// The registry's checkpoint signing key.
pub struct Signer(SigningKey);

impl Signer {
    pub fn generate() -> Self {
        Self(SigningKey::from_bytes(&random()))
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    pub fn sign(&self, body: &[u8]) -> [u8; 64] {
        self.0.sign(body).to_bytes()
    }
}

/// Hex of the first 8 bytes of SHA-256 of a public key: names a signing key in a checkpoint.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(public_key).get(..8).unwrap_or_default())
}

/// Checks an Ed25519 signature (strict: rejects malleable and small-order forms).
pub fn verify_signature(public_key: &[u8], body: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    vk.verify_strict(body, &sig).is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The 32 bytes of a key written in hex, as the vectors below give them.
    pub(crate) fn key32(hex: &str) -> [u8; 32] {
        hex::decode(hex).unwrap().try_into().unwrap()
    }

    /// Stored tokens and MACs must stay what they were: the values below were computed apart,
    /// with Python's `hmac` module, from the definitions (each part preceded by its length as a
    /// big-endian u64; keys derived from the KEK under their labels).
    #[test]
    fn blind_tokens_and_event_macs_keep_their_known_values() {
        let kek = Kek(Zeroizing::new([7u8; 32]));
        assert_eq!(
            hex::encode(kek.blind_index_key().token("name|1800|290.34")),
            "3df09bf9df1e329eed7dd5cd041f9ad8"
        );
        let mac = kek.event_mac_key();
        assert_eq!(
            hex::encode(mac.mac(5, &[9u8; 32])),
            "2c053a533f6c7141d9c49b290e694d96181f9bb8910234f2efd6890b5e9ba99c"
        );
        // The kept key state is reused, not used up: the same message gives the same MAC.
        assert_eq!(mac.mac(5, &[9u8; 32]), mac.mac(5, &[9u8; 32]));
        assert_ne!(mac.mac(5, &[9u8; 32]), mac.mac(6, &[9u8; 32]));
    }

    #[test]
    fn a_sealed_payload_opens_only_with_its_own_key_and_binding() {
        let k = DataKey::generate();
        let aad = seal_aad("AS-000001", "identity", "ev1");
        let sealed = k.seal(&aad, "리한검".as_bytes());
        assert_eq!(
            k.open(&aad, &sealed).unwrap().as_slice(),
            "리한검".as_bytes()
        );
        assert!(
            k.open(&seal_aad("AS-000002", "identity", "ev1"), &sealed)
                .is_err()
        );
        assert!(
            k.open(&seal_aad("AS-000001", "family", "ev1"), &sealed)
                .is_err()
        );
        assert!(
            k.open(&seal_aad("AS-000001", "identity", "ev2"), &sealed)
                .is_err()
        );
        assert!(DataKey::generate().open(&aad, &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(k.open(&aad, &flipped).is_err());
        assert!(k.open(&aad, &sealed[..10]).is_err());
        // Two seals of the same text differ (fresh nonce), so equal names are not linkable.
        assert_ne!(sealed, k.seal(&aad, "리한검".as_bytes()));
    }

    #[test]
    fn a_wrapped_key_unwraps_only_under_its_kek_and_label() {
        let kek = Kek::generate();
        let dk = DataKey::generate();
        let w = kek.wrap(b"AS-1|identity", &dk);
        let back = kek.unwrap_key(b"AS-1|identity", &w).unwrap();
        let sealed = dk.seal(b"x", b"hello");
        assert_eq!(back.open(b"x", &sealed).unwrap().as_slice(), b"hello");
        assert!(kek.unwrap_key(b"AS-1|family", &w).is_err());
        assert!(Kek::generate().unwrap_key(b"AS-1|identity", &w).is_err());
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_refused_with_a_reason() {
        let dir = std::env::temp_dir().join(format!("asylon-vault-{}", hex::encode(random::<8>())));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.key");
        let kek = Kek::generate();
        kek.write_key_file(&path).unwrap();
        assert!(kek.write_key_file(&path).is_err(), "must not overwrite");
        let again = Kek::read_key_file(&path).unwrap();
        assert!(again.matches(&kek.check_value()));
        assert!(!Kek::generate().matches(&kek.check_value()));
        std::fs::write(&path, "not a key").unwrap();
        let e = Kek::read_key_file(&path).err().unwrap().to_string();
        assert!(e.contains("missing header"), "{e}");
        std::fs::write(&path, "asylon-kek-v1 abcd\n").unwrap();
        let e = Kek::read_key_file(&path).err().unwrap().to_string();
        assert!(e.contains("32 bytes"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_passphrase_gives_the_same_key_only_with_the_same_salt() {
        let p = KdfParams {
            m_kib: 1024,
            t: 1,
            ..KdfParams::new_random()
        };
        assert_eq!(KdfParams::decode(&p.encode()), Some(p.clone()));
        assert_eq!(KdfParams::decode("argon2id$m=1,t=1$00"), None);
        let a = Kek::from_passphrase(b"correct horse", &p).unwrap();
        let b = Kek::from_passphrase(b"correct horse", &p).unwrap();
        let c = Kek::from_passphrase(b"correct horsf", &p).unwrap();
        assert!(b.matches(&a.check_value()));
        assert!(!c.matches(&a.check_value()));
    }

    #[test]
    fn event_macs_bind_position_and_content() {
        let kek = Kek::generate();
        let m = kek.event_mac_key();
        let tag = m.mac(5, &[1; 32]);
        assert!(m.verify(5, &[1; 32], &tag));
        assert!(!m.verify(6, &[1; 32], &tag));
        assert!(!m.verify(5, &[2; 32], &tag));
        assert!(!Kek::generate().event_mac_key().verify(5, &[1; 32], &tag));
    }

    /// `.cargo/config.toml` switches poly1305 and chacha20 to their software backends by cfgs
    /// whose names are the crates' own and have changed between their versions; a name a crate
    /// no longer reads does nothing, silently, and sealing costs more CPU (see that file). This
    /// fails when either crate's version changes, so that the name is checked against the new
    /// version first.
    #[test]
    fn the_backend_switches_name_the_cfgs_of_the_crates_in_use() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
        let config = std::fs::read_to_string(root.join(".cargo/config.toml")).unwrap();
        let config: String = config.split_whitespace().collect();
        // The line of each crate known, and the cfg it reads to use its software backend.
        let known = [
            ("poly1305", "0.9.", "poly1305_backend=\"soft\""),
            ("chacha20", "0.10.", "chacha20_backend=\"soft\""),
        ];
        for (name, line, cfg) in known {
            let versions: Vec<&str> = lock
                .split("[[package]]")
                .filter(|p| p.contains(&format!("name = \"{name}\"\n")))
                .filter_map(|p| p.split("version = \"").nth(1)?.split('"').next())
                .collect();
            assert!(!versions.is_empty(), "no {name} in Cargo.lock");
            for v in versions {
                assert!(
                    v.starts_with(line),
                    "{name} is now {v}: find the cfg that selects its software backend, set it \
                     in .cargo/config.toml, measure the sealing stage of `import persons \
                     --timings`, and put the new line here"
                );
            }
            let set = format!("\"--cfg\",'{cfg}'");
            assert!(
                config.contains(&set),
                ".cargo/config.toml does not set {set}"
            );
        }
    }

    // The vectors below were computed by others (a draft's appendix, an RFC) or apart, with
    // PyNaCl and argon2-cffi: what was sealed, derived or signed with one version of the crates
    // that do it must open, derive and verify the same with the next.

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn sealing_and_opening_are_those_of_the_xchacha20_poly1305_draft() {
        let key = key32("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let sealed = hex::decode(concat!(
            "404142434445464748494a4b4c4d4e4f5051525354555657",
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa644",
            "0bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e",
            "3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e",
            "c0875924c1c7987947deafd8780acf49"
        ))
        .unwrap();
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        assert_eq!(
            decrypt(&key, &aad, &sealed).unwrap().as_slice(),
            plain.as_slice()
        );
        // Sealing with the draft's nonce gives the draft's bytes, nonce and tag included.
        let nonce: [u8; NONCE_LEN] = sealed[..NONCE_LEN].try_into().unwrap();
        assert_eq!(encrypt_with_nonce(&key, nonce, &aad, plain), sealed);
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(decrypt(&key, &aad, &flipped).is_none());
        assert!(decrypt(&key, b"other", &sealed).is_none());
    }

    /// RFC 8032, section 7.1, test 1 (an empty message).
    #[test]
    fn signatures_are_those_of_rfc_8032() {
        let seed = key32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let signer = Signer(SigningKey::from_bytes(&seed));
        assert_eq!(
            hex::encode(signer.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = signer.sign(b"");
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(verify_signature(&signer.public_key(), b"", &sig));
        assert!(!verify_signature(&signer.public_key(), b"x", &sig));
    }

    /// argon2-cffi: `hash_secret_raw(passphrase, salt, time_cost=2, memory_cost=64,
    /// parallelism=1, hash_len=32, type=Type.ID)`.
    #[test]
    fn a_passphrase_derives_the_argon2id_key_computed_apart() {
        let params = KdfParams {
            salt: *b"asylon-salt-0001",
            m_kib: 64,
            t: 2,
            p: 1,
        };
        let kek = Kek::from_passphrase(b"correct horse battery staple", &params).unwrap();
        assert_eq!(
            hex::encode(*kek.0),
            "30cd3cc0b878dcaea9585d9c86a6455090760629bcc1c0a15ada9d5344820496"
        );
    }

    #[test]
    fn signatures_verify_only_for_the_signed_body_and_key() {
        let kek = Kek::generate();
        let s = Signer::generate();
        let s2 = kek.unwrap_signer(&kek.wrap_signer(&s)).unwrap();
        assert_eq!(s.public_key(), s2.public_key());
        let sig = s2.sign(b"body");
        assert!(verify_signature(&s.public_key(), b"body", &sig));
        assert!(!verify_signature(&s.public_key(), b"bodz", &sig));
        assert!(!verify_signature(
            &Signer::generate().public_key(),
            b"body",
            &sig
        ));
        assert!(!verify_signature(&s.public_key(), b"body", &sig[..63]));
        assert_eq!(key_id(&s.public_key()).len(), 16);
    }
}
