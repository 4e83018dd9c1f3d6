//! Keys of organisations and of their members (DESIGN, "Security" 2).
//!
//! An organisation seals what only it may read (its interview notes) to its X25519 public key.
//! Its private key is never stored in the clear nor under the KEK: it is stored once per member,
//! wrapped under a key derived with Argon2id from that member's password. Holding the database
//! and the key file is therefore not enough to read an organisation's notes; a member's password
//! is needed.
//!
//! Sealing to a public key: a fresh ephemeral X25519 key pair per message, the shared secret run
//! through HMAC-SHA-256 with both public keys (as HKDF-Extract would) into an XChaCha20-Poly1305
//! key. The output is `ephemeral public key || nonce || ciphertext`.

use crate::{VaultError, decrypt, encrypt, hmac, random};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

const EPHEMERAL_LEN: usize = 32;

/// An organisation's private key. Zeroized on drop.
pub struct OrgSecret(StaticSecret);

fn message_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac(shared, &[b"asylon/org-seal/v1", ephemeral, recipient]))
}

impl OrgSecret {
    pub fn generate() -> Self {
        Self(StaticSecret::from(random::<32>()))
    }

    pub fn public_key(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }

    /// Opens what [`seal_to_org`] sealed to this organisation under the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let damaged = VaultError::Corrupt("organisation-sealed data");
        if sealed.len() < EPHEMERAL_LEN {
            return Err(damaged);
        }
        let (eph, rest) = sealed.split_at(EPHEMERAL_LEN);
        let eph: [u8; 32] = eph
            .try_into()
            .map_err(|_| VaultError::Corrupt("ephemeral key"))?;
        let shared = self.0.diffie_hellman(&PublicKey::from(eph));
        if !shared.was_contributory() {
            return Err(damaged);
        }
        let key = message_key(shared.as_bytes(), &eph, &self.public_key());
        decrypt(&key, aad, rest).ok_or(damaged)
    }

    /// Wraps this key for one member under his [`MemberKey`]; the user name is bound in.
    pub fn wrap_for(&self, member: &MemberKey, org: &str, user: &str) -> Vec<u8> {
        encrypt(&member.0, &member_aad(org, user), self.0.as_bytes())
    }

    pub fn unwrap_from(
        member: &MemberKey,
        org: &str,
        user: &str,
        wrapped: &[u8],
    ) -> Result<Self, VaultError> {
        let plain = decrypt(&member.0, &member_aad(org, user), wrapped)
            .ok_or(VaultError::Corrupt("wrapped organisation key"))?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Corrupt("organisation key length"))?;
        Ok(Self(StaticSecret::from(bytes)))
    }
}

fn member_aad(org: &str, user: &str) -> Vec<u8> {
    format!("asylon/org-key/v1|{org}|{user}").into_bytes()
}

/// Seals `plain` so that only the holder of the organisation's private key can open it.
pub fn seal_to_org(public: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let eph = StaticSecret::from(random::<32>());
    let eph_pub = PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&PublicKey::from(*public));
    let key = message_key(shared.as_bytes(), &eph_pub, public);
    let mut out = eph_pub.to_vec();
    out.extend_from_slice(&encrypt(&key, aad, plain));
    out
}

/// Argon2id cost of password hashes and member keys. The default is OWASP's recommendation for
/// interactive sign-in (19 MiB, 2 passes); tests use a lighter one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordCost {
    pub m_kib: u32,
    pub t: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self {
            m_kib: 19 * 1024,
            t: 2,
        }
    }
}

impl PasswordCost {
    /// The cost a PHC string of [`hash_password`] was made with; `None` if it is not one. A
    /// member key is derived beside his password hash, at the same cost (at enrolment, at a
    /// change of password), so this is the cost to derive it again at, whatever cost new
    /// hashes are made at now: derived at another it would be another key, and his copy of
    /// the organisation key would no longer open.
    pub fn of_hash(phc: &str) -> Option<Self> {
        let hash = argon2::password_hash::phc::PasswordHash::new(phc).ok()?;
        let p = argon2::Params::try_from(&hash).ok()?;
        (p.p_cost() == 1).then(|| Self {
            m_kib: p.m_cost(),
            t: p.t_cost(),
        })
    }

    fn argon(&self) -> Result<argon2::Argon2<'static>, VaultError> {
        let p = argon2::Params::new(self.m_kib, self.t, 1, Some(32))
            .map_err(|e| VaultError::Kdf(e.to_string()))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            p,
        ))
    }
}

/// A key derived from a member's password, which wraps his copy of the organisation's key.
pub struct MemberKey(Zeroizing<[u8; 32]>);

impl MemberKey {
    /// The key a session's copy of the organisation key is wrapped under: derived from the
    /// session cookie's secret, which only the browser holds (the database keeps its hash).
    /// Any server process that receives the cookie can open it; the database alone cannot.
    pub fn from_session_secret(secret: &[u8]) -> Self {
        Self(Zeroizing::new(hmac(
            secret,
            &[b"asylon/session-org-key/v1"],
        )))
    }

    pub fn derive(
        password: &[u8],
        salt: &[u8; 16],
        cost: PasswordCost,
    ) -> Result<Self, VaultError> {
        let mut out = Zeroizing::new([0u8; 32]);
        cost.argon()?
            .hash_password_into(password, salt, out.as_mut())
            .map_err(|e| VaultError::Kdf(e.to_string()))?;
        Ok(Self(out))
    }
}

/// Hashes a password for sign-in as a PHC string (`$argon2id$v=19$m=…`).
pub fn hash_password(password: &[u8], cost: PasswordCost) -> Result<String, VaultError> {
    use argon2::password_hash::PasswordHasher;
    cost.argon()?
        .hash_password_with_salt(password, &random::<16>())
        .map(|h| h.to_string())
        .map_err(|e| VaultError::Kdf(e.to_string()))
}

/// Checks a password against a PHC string, with the parameters the string names.
pub fn verify_password(password: &[u8], phc: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password, &h)
            .is_ok()
    })
}

/// Seals account secrets the server itself must read (TOTP seeds) under a key derived from the
/// KEK; bound to the user.
pub struct AccountKey(pub(crate) Zeroizing<[u8; 32]>);

impl AccountKey {
    pub fn seal(&self, user: &str, plain: &[u8]) -> Vec<u8> {
        encrypt(&self.0, &account_aad(user), plain)
    }

    pub fn open(&self, user: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        decrypt(&self.0, &account_aad(user), sealed).ok_or(VaultError::Corrupt("account secret"))
    }
}

fn account_aad(user: &str) -> Vec<u8> {
    format!("asylon/account/v1|{user}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIGHT: PasswordCost = PasswordCost { m_kib: 256, t: 1 };

    #[test]
    fn only_the_organisation_opens_what_was_sealed_to_it() {
        let org = OrgSecret::generate();
        let other = OrgSecret::generate();
        let sealed = seal_to_org(&org.public_key(), b"note-1", b"he fears his brother's unit");
        assert_eq!(
            &*org.open(b"note-1", &sealed).unwrap(),
            b"he fears his brother's unit"
        );
        assert!(other.open(b"note-1", &sealed).is_err());
        assert!(
            org.open(b"note-2", &sealed).is_err(),
            "bound to its associated data"
        );
        let mut flipped = sealed.clone();
        flipped[40] ^= 1;
        assert!(org.open(b"note-1", &flipped).is_err());
        assert!(org.open(b"note-1", &sealed[..20]).is_err());
    }

    #[test]
    fn a_hash_tells_the_cost_it_was_made_with() {
        for cost in [LIGHT, PasswordCost { m_kib: 512, t: 3 }] {
            let phc = hash_password(b"correct horse", cost).unwrap();
            assert_eq!(PasswordCost::of_hash(&phc), Some(cost), "{phc}");
        }
        let phc = hash_password(b"correct horse", LIGHT).unwrap();
        for bad in [
            "",
            "not a hash",
            &phc.replace("m=256", "m=x"),
            &phc.replace("p=1", "p=2"),
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            assert_eq!(PasswordCost::of_hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_members_wrapped_key_opens_only_with_his_password_and_name() {
        let org = OrgSecret::generate();
        let salt = random();
        let k = MemberKey::derive(b"correct horse", &salt, LIGHT).unwrap();
        let wrapped = org.wrap_for(&k, "neutral", "ana");
        let back = OrgSecret::unwrap_from(&k, "neutral", "ana", &wrapped).unwrap();
        assert_eq!(back.public_key(), org.public_key());
        let wrong = MemberKey::derive(b"wrong horse", &salt, LIGHT).unwrap();
        assert!(OrgSecret::unwrap_from(&wrong, "neutral", "ana", &wrapped).is_err());
        assert!(OrgSecret::unwrap_from(&k, "neutral", "bob", &wrapped).is_err());
        assert!(OrgSecret::unwrap_from(&k, "detaining", "ana", &wrapped).is_err());
    }

    #[test]
    fn a_session_copy_opens_only_with_that_sessions_secret() {
        let org = OrgSecret::generate();
        let k = MemberKey::from_session_secret(b"cookie one");
        let wrapped = org.wrap_for(&k, "neutral", "ana#session");
        let back = OrgSecret::unwrap_from(&k, "neutral", "ana#session", &wrapped).unwrap();
        assert_eq!(back.public_key(), org.public_key());
        let other = MemberKey::from_session_secret(b"cookie two");
        assert!(OrgSecret::unwrap_from(&other, "neutral", "ana#session", &wrapped).is_err());
    }

    /// Computed apart with PyNaCl: RFC 7748's Alice as the organisation, its Bob as the
    /// ephemeral key, the message key as [`message_key`] defines it, nonce 00 01 … 17.
    #[test]
    fn what_was_sealed_apart_to_an_organisation_opens() {
        let secret =
            crate::tests::key32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let org = OrgSecret(StaticSecret::from(secret));
        assert_eq!(
            hex::encode(org.public_key()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let sealed = hex::decode(concat!(
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
            "000102030405060708090a0b0c0d0e0f1011121314151617",
            "256bad6adf6108222d0693b54b9f0dbc6118578f8ade5269ef326dbad7f5916b2cf404d33d1bec1c",
            "cd7f620fc14c7051174ffb332fbe17"
        ))
        .unwrap();
        assert_eq!(
            &*org.open(b"asylon/test/org", &sealed).unwrap(),
            b"sealed to the bureau before the upgrade"
        );
        assert!(org.open(b"asylon/test/other", &sealed).is_err());
    }

    /// argon2-cffi: `hash_secret_raw(password, salt, time_cost=2, memory_cost=64,
    /// parallelism=1, hash_len=32, type=Type.ID)`, and a PHC string from its `PasswordHasher`.
    #[test]
    fn member_keys_and_password_hashes_agree_with_argon2_cffi() {
        let cost = PasswordCost { m_kib: 64, t: 2 };
        let k =
            MemberKey::derive(b"correct horse battery staple", b"asylon-salt-0001", cost).unwrap();
        assert_eq!(
            hex::encode(*k.0),
            "30cd3cc0b878dcaea9585d9c86a6455090760629bcc1c0a15ada9d5344820496"
        );
        let phc = "$argon2id$v=19$m=64,t=1,p=1$GABpVwm3oOmi4AgqONExlw$dPt5B7NDmLEwSyEWz7sSlGgGcVevzdSkvaDX1oSMemA";
        assert!(verify_password(b"correct horse battery staple", phc));
        assert!(!verify_password(b"correct horse battery stapler", phc));
    }

    #[test]
    fn password_hashes_verify_the_right_password_only() {
        let h = hash_password(b"s3cret pass", LIGHT).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(b"s3cret pass", &h));
        assert!(!verify_password(b"s3cret pasS", &h));
        assert!(!verify_password(b"s3cret pass", "not a hash"));
        assert_ne!(h, hash_password(b"s3cret pass", LIGHT).unwrap(), "salted");
    }
}
