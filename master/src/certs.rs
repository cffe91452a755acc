//! `meridian-master certs init`: a development mesh CA and certificates for the
//! master and each site, plus the key pair that signs dev JWTs. Production uses
//! certificates from the company's PKI (Kubernetes secrets); these files are for a
//! local mesh and tests.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// What `init` wrote.
#[derive(Debug, Clone)]
pub struct DevCerts {
    pub dir: PathBuf,
}

impl DevCerts {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn cert(&self, identity: &str) -> PathBuf {
        self.dir.join(format!("{identity}.pem"))
    }
    pub fn key(&self, identity: &str) -> PathBuf {
        self.dir.join(format!("{identity}.key"))
    }
    pub fn jwt_private(&self) -> PathBuf {
        self.dir.join("jwt-signing.key")
    }
    pub fn jwt_public(&self) -> PathBuf {
        self.dir.join("jwt-signing.pub.pem")
    }
}

/// A CA that can sign leaf certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    pub fn new(name: &str) -> anyhow::Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for `identity` (its DNS SAN), usable as TLS server and client,
    /// also valid for `localhost` and `127.0.0.1` so a local mesh needs no DNS.
    /// Returns (certificate PEM, key PEM).
    pub fn leaf(&self, identity: &str) -> anyhow::Result<(String, String)> {
        let mut params = CertificateParams::new(vec![
            identity.to_owned(),
            "localhost".into(),
            "127.0.0.1".into(),
        ])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn write(path: &Path, content: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

/// Writes `ca.pem`, `master.{pem,key}`, `<site>.{pem,key}` and the dev JWT key pair
/// into `dir`. The CA's private key is not kept: a dev mesh is regenerated, not extended.
pub fn init(dir: &Path, sites: &[String]) -> anyhow::Result<DevCerts> {
    for s in sites {
        if !meridian_wire::is_site_name(s) {
            anyhow::bail!(
                "site name `{s}` is invalid; allowed: {}",
                meridian_wire::SITE_NAME_RULE
            );
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let out = DevCerts {
        dir: dir.to_owned(),
    };
    let ca = Ca::new("Meridian dev mesh CA")?;
    write(&out.ca(), ca.pem(), false)?;
    let identities = std::iter::once(meridian_service::tls::MASTER_IDENTITY.to_owned())
        .chain(sites.iter().cloned());
    for id in identities {
        let (cert, key) = ca.leaf(&id)?;
        write(&out.cert(&id), &cert, false)?;
        write(&out.key(&id), &key, true)?;
    }
    let jwt = KeyPair::generate()?;
    write(&out.jwt_private(), &jwt.serialize_pem(), true)?;
    write(&out.jwt_public(), &jwt.public_key_pem(), false)?;
    Ok(out)
}
