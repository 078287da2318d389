//! What a pool says about itself through Cognito's read-only API: `ListUserPools`,
//! `DescribeUserPool`, `DescribeUserPoolDomain`, `GetUserPoolMfaConfig` and
//! `GetSigningCertificate`, in Cognito's shapes, with only what the pool truly does.

use crate::domain::mfa::MfaMode;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::{Put, StoreError};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The account id in ARNs and domain descriptions (there is no AWS account behind a pool).
pub const ACCOUNT_ID: &str = "000000000000";
/// The document holding a pool's creation and modification dates.
const RECORD_KIND: &str = "pool";
const RECORD_ID: &str = "description";
/// How long a signing certificate is valid, as Cognito's (10 years).
const CERTIFICATE_DAYS: i64 = 3650;

/// When a pool was first served and when what it describes last changed.
#[derive(Debug, Deserialize)]
struct Record {
    created_at: i64,
    updated_at: i64,
    /// SHA-256 of the settings part of the description.
    digest: String,
}

/// Records the pool's creation, or a change of its settings since the last start (another node
/// starting at the same moment may win the insert; its dates are as good).
async fn record(pool: &Pool) -> Result<(), StoreError> {
    let settings = Value::Object(settings(pool)).to_string();
    let digest = hex::encode(digest(&SHA256, settings.as_bytes()));
    let now = pool.now();
    let existing = pool
        .store
        .object(&pool.id, RECORD_KIND, RECORD_ID)
        .await?
        .and_then(|b| serde_json::from_str::<Record>(&b).ok());
    let (record, mode) = match existing {
        Some(r) if r.digest == digest => return Ok(()),
        Some(r) => (
            Record {
                created_at: r.created_at,
                updated_at: now,
                digest,
            },
            Put::Upsert,
        ),
        None => (
            Record {
                created_at: now,
                updated_at: now,
                digest,
            },
            Put::Insert,
        ),
    };
    let body = json!({
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "digest": record.digest,
    })
    .to_string();
    pool.store
        .put_object(&pool.id, RECORD_KIND, RECORD_ID, body, mode)
        .await?;
    Ok(())
}

/// `(created, modified)`; the start time when no record was written (a store that failed then).
async fn dates(pool: &Pool) -> Result<(i64, i64), IdpError> {
    let r = pool
        .store
        .object(&pool.id, RECORD_KIND, RECORD_ID)
        .await?
        .and_then(|b| serde_json::from_str::<Record>(&b).ok());
    Ok(r.map_or((pool.now(), pool.now()), |r| (r.created_at, r.updated_at)))
}

fn arn(pool: &Pool) -> String {
    format!(
        "arn:aws:cognito-idp:{}:{ACCOUNT_ID}:userpool/{}",
        pool.region, pool.id
    )
}

/// The pool's domain as Cognito names it: the prefix of a `<prefix>.auth.<region>.amazoncognito.com`
/// base URL, otherwise the base URL's authority (host, and port when the URL gives one) as a
/// custom domain. `(name, custom)`.
pub fn domain(pool: &Pool) -> (String, bool) {
    let authority = pool
        .base_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_ascii_lowercase()))
        .unwrap_or_default();
    let suffix = format!(".auth.{}.amazoncognito.com", pool.region);
    match authority.strip_suffix(&suffix) {
        Some(prefix) if !prefix.is_empty() && !prefix.contains('.') => (prefix.to_string(), false),
        _ => (authority, true),
    }
}

fn mfa_name(m: MfaMode) -> &'static str {
    match m {
        MfaMode::Off => "OFF",
        MfaMode::Optional => "OPTIONAL",
        MfaMode::On => "ON",
    }
}

/// One standard attribute: `(name, type, mutable, required, string length bounds)`.
type StandardAttribute = (&'static str, &'static str, bool, bool, Option<(u32, u32)>);

/// Cognito's standard schema, as the pool enforces it.
const STANDARD_SCHEMA: [StandardAttribute; 20] = [
    ("sub", "String", false, true, Some((1, 2048))),
    ("name", "String", true, false, Some((0, 2048))),
    ("given_name", "String", true, false, Some((0, 2048))),
    ("family_name", "String", true, false, Some((0, 2048))),
    ("middle_name", "String", true, false, Some((0, 2048))),
    ("nickname", "String", true, false, Some((0, 2048))),
    ("preferred_username", "String", true, false, Some((0, 2048))),
    ("profile", "String", true, false, Some((0, 2048))),
    ("picture", "String", true, false, Some((0, 2048))),
    ("website", "String", true, false, Some((0, 2048))),
    ("email", "String", true, false, Some((0, 2048))),
    ("email_verified", "Boolean", true, false, None),
    ("gender", "String", true, false, Some((0, 2048))),
    ("birthdate", "String", true, false, Some((10, 10))),
    ("zoneinfo", "String", true, false, Some((0, 2048))),
    ("locale", "String", true, false, Some((0, 2048))),
    ("phone_number", "String", true, false, Some((0, 2048))),
    ("phone_number_verified", "Boolean", true, false, None),
    ("address", "String", true, false, Some((0, 2048))),
    ("updated_at", "Number", true, false, None),
];

fn schema(pool: &Pool) -> Vec<Value> {
    let mut out: Vec<Value> = STANDARD_SCHEMA
        .iter()
        .map(|(name, kind, mutable, required, lengths)| {
            let mut a = json!({
                "Name": name,
                "AttributeDataType": kind,
                "DeveloperOnlyAttribute": false,
                "Mutable": mutable,
                "Required": required,
            });
            if let Some((min, max)) = lengths {
                a["StringAttributeConstraints"] =
                    json!({"MinLength": min.to_string(), "MaxLength": max.to_string()});
            }
            if *name == "updated_at" {
                a["NumberAttributeConstraints"] = json!({"MinValue": "0"});
            }
            a
        })
        .collect();
    for c in &pool.about.custom_attributes {
        let mut a = json!({
            "Name": format!("custom:{}", c.name),
            "AttributeDataType": c.attribute_data_type,
            "DeveloperOnlyAttribute": false,
            "Mutable": c.mutable,
            "Required": false,
        });
        match c.attribute_data_type.as_str() {
            "String" => a["StringAttributeConstraints"] = json!({}),
            "Number" => a["NumberAttributeConstraints"] = json!({}),
            _ => {}
        }
        out.push(a);
    }
    out
}

/// The description without its dates and user count: what the config decides. A change here is
/// a modification of the pool.
fn settings(pool: &Pool) -> Map<String, Value> {
    let p = &pool.policy;
    let subject = "Your verification code";
    let message = format!(
        "Your verification code for {} is {{####}}. It is valid for 24 hours.",
        pool.name
    );
    let email = match &pool.about.email_from {
        Some(from) => json!({"EmailSendingAccount": "DEVELOPER", "From": from}),
        None => json!({"EmailSendingAccount": "COGNITO_DEFAULT"}),
    };
    let (domain, custom) = domain(pool);
    let v = json!({
        "Id": pool.id,
        "Name": pool.name,
        "Arn": arn(pool),
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": p.minimum_length,
                "RequireUppercase": p.require_uppercase,
                "RequireLowercase": p.require_lowercase,
                "RequireNumbers": p.require_numbers,
                "RequireSymbols": p.require_symbols,
                "TemporaryPasswordValidityDays": p.temporary_password_validity_days,
            },
            "SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD"]},
        },
        // The pool lives in the config: the API cannot delete it.
        "DeletionProtection": "ACTIVE",
        "LambdaConfig": {},
        "SchemaAttributes": schema(pool),
        // Sign-up sends its code to the email address, or the phone number without one.
        "AutoVerifiedAttributes": ["email", "phone_number"],
        "EmailVerificationMessage": message,
        "EmailVerificationSubject": subject,
        "VerificationMessageTemplate": {
            "EmailMessage": message,
            "EmailSubject": subject,
            "DefaultEmailOption": "CONFIRM_WITH_CODE",
        },
        // A changed address takes effect at once, unverified, as Cognito's default.
        "UserAttributeUpdateSettings": {"AttributesRequireVerificationBeforeUpdate": []},
        "MfaConfiguration": mfa_name(pool.mfa),
        "EmailConfiguration": email,
        "Domain": domain,
        "AdminCreateUserConfig": {
            "AllowAdminCreateUserOnly": !pool.allow_self_sign_up,
            "UnusedAccountValidityDays": p.temporary_password_validity_days,
        },
        "UserPoolAddOns": {"AdvancedSecurityMode": "OFF"},
        "UsernameConfiguration": {"CaseSensitive": true},
        // Reset codes go to a verified email address first, else a verified phone number.
        "AccountRecoverySetting": {"RecoveryMechanisms": [
            {"Priority": 1, "Name": "verified_email"},
            {"Priority": 2, "Name": "verified_phone_number"},
        ]},
        "UserPoolTier": "LITE",
    });
    let Value::Object(mut m) = v else {
        return Map::new();
    };
    if custom {
        m.insert("CustomDomain".into(), m["Domain"].clone());
    }
    m
}

/// `DescribeUserPool`.
pub(crate) async fn describe(pool: &Pool) -> Result<Value, IdpError> {
    let mut m = settings(pool);
    let (created, modified) = dates(pool).await?;
    m.insert("CreationDate".into(), created.into());
    m.insert("LastModifiedDate".into(), modified.into());
    m.insert(
        "EstimatedNumberOfUsers".into(),
        pool.store.count_users(&pool.id).await?.into(),
    );
    Ok(json!({ "UserPool": m }))
}

/// Cognito's message for a member that breaks a constraint.
fn constraint(member: &str, value: &str, rule: &str) -> IdpError {
    IdpError::InvalidParameter(format!(
        "1 validation error detected: Value {value} at '{member}' failed to satisfy constraint: {rule}"
    ))
}

/// `ListUserPools` over the pools the caller may see, by id: `MaxResults` (1–60) of them after
/// `NextToken` (the id the previous page ended with).
pub(crate) async fn list(
    visible: &[&Pool],
    request: &Map<String, Value>,
) -> Result<Value, IdpError> {
    let max = match request.get("MaxResults") {
        None | Some(Value::Null) => {
            return Err(constraint("maxResults", "null", "Member must not be null"));
        }
        Some(v) => v
            .as_i64()
            .ok_or_else(|| IdpError::InvalidParameter("MaxResults must be an integer".into()))?,
    };
    if max < 1 {
        return Err(constraint(
            "maxResults",
            &format!("'{max}'"),
            "Member must have value greater than or equal to 1",
        ));
    }
    if max > 60 {
        return Err(constraint(
            "maxResults",
            &format!("'{max}'"),
            "Member must have value less than or equal to 60",
        ));
    }
    let after = match request.get("NextToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(t))
            if !t.is_empty() && t.len() <= 128 && !t.contains(char::is_whitespace) =>
        {
            Some(t.as_str())
        }
        Some(_) => {
            return Err(IdpError::InvalidParameter(
                "1 validation error detected: Value at 'nextToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\S]+".into(),
            ));
        }
    };
    let rest: Vec<&Pool> = visible
        .iter()
        .copied()
        .filter(|p| after.is_none_or(|a| p.id.as_str() > a))
        .collect();
    let page = &rest[..rest.len().min(max as usize)];
    let mut pools = Vec::with_capacity(page.len());
    for p in page {
        let (created, modified) = dates(p).await?;
        pools.push(json!({
            "Id": p.id,
            "Name": p.name,
            "LambdaConfig": {},
            "LastModifiedDate": modified,
            "CreationDate": created,
        }));
    }
    let mut out = json!({ "UserPools": pools });
    if rest.len() > page.len()
        && let Some(last) = page.last()
    {
        out["NextToken"] = last.id.clone().into();
    }
    Ok(out)
}

/// `DescribeUserPoolDomain`: the pool among `visible` whose domain (prefix or custom, see
/// [`domain`]) is `Domain`; an unknown domain gets Cognito's empty description.
pub(crate) fn describe_domain(
    visible: &[&Pool],
    request: &Map<String, Value>,
) -> Result<Value, IdpError> {
    let name = match request.get("Domain").and_then(Value::as_str) {
        None => return Err(constraint("domain", "null", "Member must not be null")),
        Some("") => {
            return Err(constraint(
                "domain",
                "''",
                "Member must have length greater than or equal to 1",
            ));
        }
        Some(d) if d.len() > 63 => {
            return Err(constraint(
                "domain",
                &format!("'{}'", d.chars().take(64).collect::<String>()),
                "Member must have length less than or equal to 63",
            ));
        }
        Some(d) => d.to_ascii_lowercase(),
    };
    let Some(pool) = visible.iter().find(|p| domain(p).0 == name) else {
        return Ok(json!({ "DomainDescription": {} }));
    };
    let (domain, custom) = domain(pool);
    let host = domain.split(':').next().unwrap_or_default().to_string();
    let d = json!({
        "UserPoolId": pool.id,
        "AWSAccountId": ACCOUNT_ID,
        "Domain": domain,
        // What serves it (Cognito's is the CloudFront distribution a custom domain points to).
        "CloudFrontDistribution": if custom { host } else {
            format!("{domain}.auth.{}.amazoncognito.com", pool.region)
        },
        "Version": "1",
        "Status": "ACTIVE",
        // The classic hosted UI.
        "ManagedLoginVersion": 1,
    });
    Ok(json!({ "DomainDescription": d }))
}

/// `GetUserPoolMfaConfig`: TOTP is the only second factor.
pub(crate) fn mfa_config(pool: &Pool) -> Value {
    json!({
        "MfaConfiguration": mfa_name(pool.mfa),
        "SoftwareTokenMfaConfiguration": {"Enabled": pool.mfa != MfaMode::Off},
    })
}

/// `GetSigningCertificate`: a self-signed X.509 certificate (base64 DER, as Cognito's) for the key
/// that signs the pool's ID tokens now. It is the same on every call and node while that key
/// signs: valid 10 years from when the key (or the pool) started, serial derived from the `kid`,
/// and RSA PKCS#1 v1.5 signatures are deterministic.
pub(crate) async fn signing_certificate(pool: &Pool) -> Result<Value, IdpError> {
    let keys = pool.store.signing_keys(&pool.id, "id").await?;
    let now = pool.now();
    let Some(key) = keys
        .iter()
        .rposition(|k| k.activates_at <= now)
        .or((!keys.is_empty()).then_some(0))
        .and_then(|i| keys.get(i))
    else {
        return Err(IdpError::Internal);
    };
    let (created, _) = dates(pool).await?;
    let start = key.activates_at.max(created);
    let cert = certificate(&pool.id, &key.kid, &key.pkcs8, start).ok_or(IdpError::Internal)?;
    Ok(json!({ "Certificate": STANDARD.encode(cert) }))
}

/// The DER of a self-signed certificate for an RSA key (PKCS#8), valid from `start`.
fn certificate(pool_id: &str, kid: &str, pkcs8: &[u8], start: i64) -> Option<Vec<u8>> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.to_vec());
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_RSA_SHA256).ok()?;
    let mut params = CertificateParams::new(Vec::<String>::new()).ok()?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, pool_id);
    name.push(DnType::OrganizationName, "Portcullis user pool");
    params.distinguished_name = name;
    params.not_before = time::OffsetDateTime::from_unix_timestamp(start).ok()?;
    params.not_after = params.not_before + time::Duration::days(CERTIFICATE_DAYS);
    // Positive, 16 bytes, from the key id: the same certificate wherever it is made.
    let mut serial = digest(&SHA256, kid.as_bytes()).as_ref()[..16].to_vec();
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    params.serial_number = Some(serial.into());
    params.self_signed(&key).ok().map(|c| c.der().to_vec())
}

impl Pool {
    /// Records the pool's creation, or a change of its settings since the last start (at open).
    pub(crate) async fn record_description(&self) -> Result<(), StoreError> {
        record(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[tokio::test]
    async fn list_checks_its_members_as_cognito() {
        for (req, wanted) in [
            (json!({}), "Value null at 'maxResults'"),
            (json!({"MaxResults": 0}), "greater than or equal to 1"),
            (json!({"MaxResults": 61}), "less than or equal to 60"),
            (json!({"MaxResults": "ten"}), "integer"),
            (json!({"MaxResults": 5, "NextToken": ""}), "nextToken"),
            (json!({"MaxResults": 5, "NextToken": "a b"}), "nextToken"),
        ] {
            match list(&[], &request(req)).await {
                Err(IdpError::InvalidParameter(m)) => assert!(m.contains(wanted), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            list(&[], &request(json!({"MaxResults": 60})))
                .await
                .unwrap(),
            json!({"UserPools": []})
        );
    }

    #[test]
    fn an_unknown_domain_has_an_empty_description() {
        assert_eq!(
            describe_domain(&[], &request(json!({"Domain": "nope"}))).unwrap(),
            json!({"DomainDescription": {}})
        );
        for bad in [
            json!({}),
            json!({"Domain": ""}),
            json!({"Domain": "a".repeat(64)}),
        ] {
            assert!(matches!(
                describe_domain(&[], &request(bad)),
                Err(IdpError::InvalidParameter(_))
            ));
        }
    }

    #[test]
    fn a_certificate_is_the_same_each_time_and_holds_the_key() {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
            .unwrap()
            .as_ref()
            .to_vec();
        let a = certificate("us-east-1_abc", "kid", &pkcs8, 1_700_000_000).unwrap();
        let b = certificate("us-east-1_abc", "kid", &pkcs8, 1_700_000_000).unwrap();
        assert_eq!(a, b);
        let spki = aws_lc_rs::signature::KeyPair::public_key(&kp);
        let spki_der =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(spki)
                .unwrap();
        assert!(
            a.windows(spki_der.as_ref().len())
                .any(|w| w == spki_der.as_ref()),
            "the certificate carries the signing key"
        );
    }
}
