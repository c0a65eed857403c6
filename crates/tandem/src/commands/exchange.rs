//! `tandem exchange`: the Mailbox (Exchange Server) cmdlets and scripts: Get-/Set-AuthConfig,
//! *-PartnerApplication, Configure-EnterprisePartnerApplication.ps1,
//! Get-/Set-ClientAccessServer, *-UserPhoto, *-MailUser and the UM mailbox cmdlets (`um.rs`).

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use tandem_config::Config;
use tandem_pki::Pki;
use tandem_trust::mailbox as mbx;
use tandem_trust::partners::{self, EnterpriseApp, EnterpriseError};

use super::{Location, check_guid, fmt_time, mbx_store, parse_date, partner, print_json};
use crate::failure::{CliResult, Failure, usage};

#[derive(Debug, Subcommand)]
pub enum ExchangeCommand {
    /// Get-AuthConfig.
    GetAuthConfig {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Set-AuthConfig: one parameter set at a time.
    SetAuthConfig {
        /// NewCertificateParameter: the next certificate (from the certificate store).
        #[arg(long, requires = "new_certificate_effective_date")]
        new_certificate_thumbprint: Option<String>,
        #[arg(long, requires = "new_certificate_thumbprint")]
        new_certificate_effective_date: Option<String>,
        /// PublishAuthCertificateParameter: the next certificate becomes current now.
        #[arg(long)]
        publish_certificate: bool,
        #[arg(long)]
        clear_previous_certificate: bool,
        /// CurrentCertificateParameter: replace the current certificate now.
        #[arg(long)]
        certificate_thumbprint: Option<String>,
        /// Accepted for compatibility; every mailbox reads the shared store at once.
        #[arg(long)]
        skip_immediate_certificate_deployment: bool,
        /// AuthConfigSettings.
        #[arg(long)]
        realm: Option<String>,
        #[arg(long)]
        service_name: Option<String>,
        #[command(flatten)]
        location: Location,
    },
    /// New-PartnerApplication -AuthMetadataUrl.
    NewPartnerApplication {
        #[arg(long)]
        name: String,
        #[arg(long)]
        auth_metadata_url: String,
        #[arg(long)]
        realm: Option<String>,
        #[arg(long)]
        linked_account: Option<String>,
        #[command(flatten)]
        flags: partner::Flags,
    },
    /// Get-PartnerApplication.
    GetPartnerApplication {
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        output: partner::Output,
    },
    /// Set-PartnerApplication (enable/disable, metadata URL).
    SetPartnerApplication {
        #[arg(long)]
        name: String,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        auth_metadata_url: Option<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Remove-PartnerApplication.
    RemovePartnerApplication {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        location: Location,
    },
    /// Configure-EnterprisePartnerApplication.ps1 (no iisreset needed).
    ConfigureEnterprisePartnerApplication {
        #[arg(long)]
        auth_metadata_url: String,
        /// Lync or SharePoint.
        #[arg(long)]
        application_type: String,
        #[command(flatten)]
        location: Location,
    },
    /// Set-Mailbox -LitigationHoldEnabled -RetainDeletedItemsFor: under hold, whatever the user
    /// deletes is kept in Recoverable Items\Purges, where eDiscovery finds it.
    SetMailbox {
        /// -Identity: the user (name, SIP URI or SMTP address).
        #[arg(long)]
        identity: String,
        #[arg(long)]
        litigation_hold_enabled: Option<bool>,
        /// Days deleted items are kept (default 14, as Exchange's).
        #[arg(long, value_name = "DAYS")]
        retain_deleted_items_for: Option<u32>,
        #[command(flatten)]
        location: Location,
    },
    /// Get-Mailbox: the hold settings of a mailbox.
    GetMailbox {
        #[arg(long)]
        identity: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Get-ClientAccessServer: the Autodiscover URI and the web services' URLs in force.
    GetClientAccessServer {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Set-ClientAccessServer (and the virtual directories' -InternalUrl/-ExternalUrl); applies to
    /// the running server at once. An empty value clears a URL ($null).
    #[command(alias = "set-client-access-service")]
    SetClientAccessServer(Box<SetClientAccessServerArgs>),
    /// Set-UserPhoto: upload a JPEG or PNG picture (saved at once, or with --preview kept for
    /// --save or --cancel); served by GetUserPhoto at once in every size up to 648x648.
    SetUserPhoto {
        /// -Identity: the user (name, SIP URI or SMTP address).
        #[arg(long)]
        identity: String,
        /// -PictureData: the picture file (JPEG or PNG).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["save", "cancel"])]
        picture_data: Option<std::path::PathBuf>,
        /// -Preview: keep the picture as a preview, shown only to its owner until --save.
        #[arg(long, requires = "picture_data")]
        preview: bool,
        /// -Save: the preview becomes the user's photo.
        #[arg(long, conflicts_with = "cancel")]
        save: bool,
        /// -Cancel: drop the preview.
        #[arg(long)]
        cancel: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Remove-UserPhoto: the user's photo is no longer served (GetUserPhoto answers 404).
    RemoveUserPhoto {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        location: Location,
    },
    /// Get-UserPhoto: whether the user has a photo (or, with --preview, a preview), its sizes and tag.
    GetUserPhoto {
        #[arg(long)]
        identity: String,
        #[arg(long)]
        preview: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Enable-MailUser: a user with no mailbox here becomes a mail user whose mailbox is at
    /// --external-email-address; Autodiscover (SOAP and POX) redirects clients there at once.
    EnableMailUser(MailUserArgs),
    /// Set-MailUser -ExternalEmailAddress: a mail user's mailbox moved.
    SetMailUser(MailUserArgs),
    /// Disable-MailUser: the user is no longer sent elsewhere (Autodiscover answers InvalidUser).
    DisableMailUser {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        location: Location,
    },
    /// Get-MailUser: every mail user, or one.
    GetMailUser {
        #[arg(long)]
        identity: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// The UM cmdlets: voicemail (commands/um.rs).
    #[command(flatten)]
    Um(super::um::UmCommand),
}

/// Enable-/Set-MailUser parameters.
#[derive(Debug, Args)]
pub struct MailUserArgs {
    /// -Identity: the user (name, SIP URI or SMTP address).
    #[arg(long)]
    identity: String,
    /// -ExternalEmailAddress: where the mailbox is (`SMTP:` prefix optional).
    #[arg(long)]
    external_email_address: String,
    #[command(flatten)]
    location: Location,
}

/// An -ExternalEmailAddress value: an SMTP address, with or without Exchange's `SMTP:` prefix.
fn external_address(value: &str) -> CliResult<tandem_types::SmtpAddress> {
    let bare = match value.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("smtp") => rest,
        _ => value,
    };
    bare.trim().parse().map_err(|e| {
        usage(format!("--external-email-address {value}: {e}; give an address such as SMTP:carol@fabrikam.com"))
    })
}

/// Enable-/Set-MailUser: `must_be_mail_user` for Set (the user already is one).
async fn set_mail_user(cfg: &Config, identity: &str, value: &str, must_be_mail_user: bool) -> CliResult {
    let address = external_address(value)?;
    let dir = super::open_directory(cfg).await?;
    let user = dir.get(identity).await?;
    if must_be_mail_user && user.external_email_address.is_none() {
        return Err(usage(format!(
            "--identity {identity}: not a mail user; make it one with `tandem exchange enable-mail-user`"
        )));
    }
    let user = dir.set_external_email_address(identity, Some(&address)).await?;
    println!("{} is a mail user: Autodiscover sends clients to {address}", user.name);
    Ok(())
}

fn mail_user_json(u: &tandem_directory::User) -> serde_json::Value {
    json!({
        "Name": u.name.to_string(),
        "DisplayName": u.display_name,
        "PrimarySmtpAddress": u.smtp_address.to_string(),
        "ExternalEmailAddress": u.external_email_address.as_ref().map(|a| format!("SMTP:{a}")),
        "RecipientTypeDetails": "MailUser",
        "AccountDisabled": !u.enabled,
    })
}

/// The mailbox key (account name) of a user with a mailbox.
async fn photo_mailbox(cfg: &Config, identity: &str) -> CliResult<String> {
    let dir = super::open_directory(cfg).await?;
    let user = dir.get(identity).await?;
    if !user.can_use_mailbox() {
        return Err(usage(format!("--identity {identity}: the user has no enabled mailbox")));
    }
    Ok(user.name.to_string())
}

/// Reads a picture file, refusing one larger than GetUserPhoto's upload limit before reading it.
fn read_picture(path: &std::path::Path) -> CliResult<Vec<u8>> {
    use std::io::Read;
    use tandem_mailbox::photos::MAX_PICTURE_BYTES;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| usage(format!("--picture-data {shown}: cannot open it ({e})")))?;
    let mut bytes = Vec::new();
    file.take(MAX_PICTURE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| usage(format!("--picture-data {shown}: cannot read it ({e})")))?;
    Ok(bytes)
}

/// Set-ClientAccessServer parameters.
#[derive(Debug, Args)]
pub struct SetClientAccessServerArgs {
    /// -Identity: the server name (optional; there is one mailbox server).
    #[arg(long)]
    identity: Option<String>,
    /// -AutoDiscoverServiceInternalUri, e.g. https://autodiscover.<domain>/autodiscover/autodiscover.xml
    #[arg(long)]
    autodiscover_service_internal_uri: Option<String>,
    /// Set-WebServicesVirtualDirectory -InternalUrl
    #[arg(long)]
    ews_internal_url: Option<String>,
    /// Set-WebServicesVirtualDirectory -ExternalUrl
    #[arg(long)]
    ews_external_url: Option<String>,
    /// Set-OwaVirtualDirectory -InternalUrl
    #[arg(long)]
    owa_internal_url: Option<String>,
    /// Set-OwaVirtualDirectory -ExternalUrl
    #[arg(long)]
    owa_external_url: Option<String>,
    /// Set-OabVirtualDirectory -InternalUrl
    #[arg(long)]
    oab_internal_url: Option<String>,
    /// Set-OabVirtualDirectory -ExternalUrl
    #[arg(long)]
    oab_external_url: Option<String>,
    /// Set-UMVirtualDirectory -InternalUrl
    #[arg(long)]
    um_internal_url: Option<String>,
    /// Set-UMVirtualDirectory -ExternalUrl
    #[arg(long)]
    um_external_url: Option<String>,
    #[command(flatten)]
    location: Location,
}

/// A certificate with its key for the mailbox: from the AuthConfig itself or the certificate store.
fn find_auth_certificate(cfg: &Config, auth: &mbx::AuthConfig, flag: &str, t: &str) -> CliResult<mbx::AuthCertificate> {
    let want = tandem_oauth::normalize_thumbprint(t);
    if let Some(c) = auth.find(&want) {
        return Ok(c.clone());
    }
    let pki = Pki::new(cfg.pki_dir());
    let found = pki.find_by_thumbprint(&want).context("reading the certificate store")?.ok_or_else(|| {
        usage(format!("{flag} {t}: no such certificate in {}; `tandem cert list` shows them", pki.dir().display()))
    })?;
    let key_path =
        found.key_path.ok_or_else(|| usage(format!("{flag} {t}: the certificate store has no private key for it")))?;
    let key = std::fs::read_to_string(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    mbx::AuthCertificate::from_pem(&found.cert_pem, &key).map_err(|e| usage(format!("{flag} {t}: {e}")))
}

pub async fn run(cmd: ExchangeCommand) -> CliResult {
    use tandem_mailbox::client_access::{self, Defaults, Setting};
    match cmd {
        ExchangeCommand::Um(cmd) => super::um::run(cmd).await,
        ExchangeCommand::GetAuthConfig { location, json } => {
            let store = mbx_store(&location.config()?).await?;
            let v = mbx::auth_config(&store).await.context("reading the auth configuration")?.view();
            if json {
                return print_json(&v);
            }
            println!("Name                           : {}", v.name);
            println!("ServiceName                    : {}", v.service_name);
            println!("Realm                          : {}", v.realm);
            println!("CurrentCertificateThumbprint   : {}", v.current_certificate_thumbprint.unwrap_or_default());
            println!("PreviousCertificateThumbprint  : {}", v.previous_certificate_thumbprint.unwrap_or_default());
            println!("NextCertificateThumbprint      : {}", v.next_certificate_thumbprint.unwrap_or_default());
            println!(
                "NextCertificateEffectiveDate   : {}",
                v.next_certificate_effective_date.map(fmt_time).unwrap_or_default()
            );
            Ok(())
        }
        ExchangeCommand::SetAuthConfig {
            new_certificate_thumbprint,
            new_certificate_effective_date,
            publish_certificate,
            clear_previous_certificate,
            certificate_thumbprint,
            skip_immediate_certificate_deployment: _,
            realm,
            service_name,
            location,
        } => {
            let sets = [
                new_certificate_thumbprint.is_some(),
                publish_certificate || clear_previous_certificate,
                certificate_thumbprint.is_some(),
                realm.is_some() || service_name.is_some(),
            ];
            match sets.iter().filter(|s| **s).count() {
                0 => {
                    return Err(usage(
                        "nothing to set: pass --new-certificate-thumbprint with --new-certificate-effective-date, --publish-certificate, --clear-previous-certificate, --certificate-thumbprint, --realm or --service-name",
                    ));
                }
                1 => {}
                _ => {
                    return Err(usage(
                        "these parameters belong to different parameter sets of Set-AuthConfig; run one set at a time (new certificate | publish/clear previous | current certificate | realm/service name)",
                    ));
                }
            }
            if let Some(s) = &service_name {
                check_guid("--service-name", s)?;
            }
            let at = new_certificate_effective_date
                .map(|d| parse_date("--new-certificate-effective-date", &d))
                .transpose()?;
            let cfg = location.config()?;
            let store = mbx_store(&cfg).await?;
            let mut auth = mbx::auth_config(&store).await.context("reading the auth configuration")?;
            if let Some(t) = new_certificate_thumbprint {
                let mut c = find_auth_certificate(&cfg, &auth, "--new-certificate-thumbprint", &t)?;
                if auth.current.as_ref().is_some_and(|cur| cur.thumbprint == c.thumbprint) {
                    return Err(usage(format!(
                        "--new-certificate-thumbprint {t}: it is already the current certificate"
                    )));
                }
                c.effective_date = at;
                println!(
                    "next certificate {} (effective {}); published in the metadata document now",
                    c.thumbprint,
                    at.map(fmt_time).unwrap_or_default()
                );
                auth.next = Some(c);
            }
            if publish_certificate {
                if !auth.publish_next() {
                    return Err(usage(
                        "--publish-certificate: there is no next certificate; set one with --new-certificate-thumbprint",
                    ));
                }
                println!(
                    "certificate {} is now current",
                    auth.current.as_ref().map(|c| c.thumbprint.as_str()).unwrap_or("")
                );
            }
            if clear_previous_certificate {
                match auth.previous.take() {
                    Some(p) => println!("previous certificate {} cleared", p.thumbprint),
                    None => println!("there was no previous certificate"),
                }
            }
            if let Some(t) = certificate_thumbprint {
                let mut c = find_auth_certificate(&cfg, &auth, "--certificate-thumbprint", &t)?;
                (c.effective_date, c.retired_at) = (None, None);
                if auth.current.as_ref().is_some_and(|cur| cur.thumbprint != c.thumbprint) {
                    // Kept published for the overlap from now, then dropped by the renewal task.
                    auth.previous = auth.current.take().map(|mut p| {
                        p.retired_at = Some(tandem_store::now_unix());
                        p
                    });
                }
                println!("certificate {} is now current", c.thumbprint);
                auth.current = Some(c);
            }
            if let Some(r) = realm {
                auth.realm = r;
            }
            if let Some(s) = service_name {
                auth.service_name = s;
            }
            mbx::save_auth_config(&store, &auth).await.context("saving the auth configuration")?;
            Ok(())
        }
        ExchangeCommand::NewPartnerApplication { name, auth_metadata_url, realm, linked_account, flags } => {
            let cfg = flags.location.config()?;
            partner::EXCHANGE.check_url(&auth_metadata_url)?;
            partner::create(partner::EXCHANGE, &cfg, &name, false, async |client| {
                let (mut p, doc) = partner::download(client, &name, &auth_metadata_url).await?;
                p.realm = realm;
                p.linked_account = linked_account;
                flags.apply_new(&mut p);
                Ok((p, doc))
            })
            .await
        }
        ExchangeCommand::GetPartnerApplication { name, output } => {
            partner::get(partner::EXCHANGE, name.as_deref(), output).await
        }
        ExchangeCommand::SetPartnerApplication { name, enabled, auth_metadata_url, location } => {
            if let Some(u) = &auth_metadata_url {
                partner::EXCHANGE.check_url(u)?;
            }
            partner::set(partner::EXCHANGE, &location.config()?, &name, auth_metadata_url, enabled, |p, fresh| {
                // A new metadata URL changes the document and the service it names, nothing else.
                if let Some(fresh) = fresh {
                    p.application_identifier = fresh.application_identifier;
                    p.auth_metadata_url = fresh.auth_metadata_url;
                    p.metadata = fresh.metadata;
                    p.metadata_error = None;
                    p.metadata_fetched_at = fresh.metadata_fetched_at;
                }
            })
            .await
        }
        ExchangeCommand::RemovePartnerApplication { name, location } => {
            partner::remove(partner::EXCHANGE, &location.config()?, &name).await
        }
        ExchangeCommand::ConfigureEnterprisePartnerApplication { auth_metadata_url, application_type, location } => {
            let cfg = location.config()?;
            configure_enterprise(&cfg, &auth_metadata_url, &application_type).await
        }
        ExchangeCommand::SetMailbox { identity, litigation_hold_enabled, retain_deleted_items_for, location } => {
            use tandem_mailbox::holds;
            if litigation_hold_enabled.is_none() && retain_deleted_items_for.is_none() {
                return Err(usage("nothing to set: pass --litigation-hold-enabled or --retain-deleted-items-for"));
            }
            if let Some(d) = retain_deleted_items_for.filter(|d| *d > holds::MAX_RETAIN_DAYS) {
                return Err(usage(format!("--retain-deleted-items-for {d}: at most {} days", holds::MAX_RETAIN_DAYS)));
            }
            let cfg = location.config()?;
            let mailbox = photo_mailbox(&cfg, &identity).await?;
            let store = mbx_store(&cfg).await?;
            let h = holds::set(&store, &mailbox, litigation_hold_enabled, retain_deleted_items_for)
                .await
                .context("storing the mailbox settings")?;
            println!("{:<24}: {}", "LitigationHoldEnabled", h.litigation_hold_enabled);
            println!("{:<24}: {}.00:00:00", "RetainDeletedItemsFor", h.retain_deleted_items_for);
            Ok(())
        }
        ExchangeCommand::GetMailbox { identity, json, location } => {
            let cfg = location.config()?;
            let mailbox = photo_mailbox(&cfg, &identity).await?;
            let store = mbx_store(&cfg).await?;
            let h = tandem_mailbox::holds::get(&store, &mailbox).await.context("reading the mailbox settings")?;
            if json {
                return print_json(&json!({
                    "Identity": mailbox,
                    "LitigationHoldEnabled": h.litigation_hold_enabled,
                    "RetainDeletedItemsFor": h.retain_deleted_items_for,
                }));
            }
            println!("{:<24}: {mailbox}", "Identity");
            println!("{:<24}: {}", "LitigationHoldEnabled", h.litigation_hold_enabled);
            println!("{:<24}: {}.00:00:00", "RetainDeletedItemsFor", h.retain_deleted_items_for);
            Ok(())
        }
        ExchangeCommand::GetClientAccessServer { location, json } => {
            let cfg = location.config()?;
            let store = tandem_mailbox::open_store(&cfg.mailbox).await.context("cannot open the mailbox store")?;
            let cas = client_access::load(&store, &Defaults::of(&cfg.mailbox)).await.context("reading settings")?;
            if json {
                let mut obj = serde_json::Map::new();
                obj.insert("Name".into(), json!(cas.name));
                obj.insert("Fqdn".into(), json!(cas.fqdn));
                for (s, v, set) in cas.entries() {
                    obj.insert(s.label().into(), json!(v));
                    obj.insert(format!("{}IsDefault", s.label()), json!(!set));
                }
                println!("{}", serde_json::Value::Object(obj));
            } else {
                println!("{:<32}: {}", "Name", cas.name);
                println!("{:<32}: {}", "Fqdn", cas.fqdn);
                for (s, v, set) in cas.entries() {
                    let shown = v.unwrap_or("");
                    let note = if set { "" } else { "  (default)" };
                    println!("{:<32}: {shown}{note}", s.label());
                }
            }
            Ok(())
        }
        ExchangeCommand::SetClientAccessServer(args) => {
            let SetClientAccessServerArgs {
                identity,
                autodiscover_service_internal_uri,
                ews_internal_url,
                ews_external_url,
                owa_internal_url,
                owa_external_url,
                oab_internal_url,
                oab_external_url,
                um_internal_url,
                um_external_url,
                location,
            } = *args;
            let cfg = location.config()?;
            let changes: Vec<(Setting, String)> = [
                (Setting::AutoDiscoverServiceInternalUri, autodiscover_service_internal_uri),
                (Setting::EwsInternalUrl, ews_internal_url),
                (Setting::EwsExternalUrl, ews_external_url),
                (Setting::OwaInternalUrl, owa_internal_url),
                (Setting::OwaExternalUrl, owa_external_url),
                (Setting::OabInternalUrl, oab_internal_url),
                (Setting::OabExternalUrl, oab_external_url),
                (Setting::UmInternalUrl, um_internal_url),
                (Setting::UmExternalUrl, um_external_url),
            ]
            .into_iter()
            .filter_map(|(s, v)| v.map(|v| (s, v.trim().to_owned())))
            .collect();
            if changes.is_empty() {
                return Err(usage(
                    "nothing to set: pass --autodiscover-service-internal-uri URI or another URL option",
                ));
            }
            for (s, v) in &changes {
                client_access::validate(*s, v).map_err(|e| usage(e.to_string()))?;
            }
            let defaults = Defaults::of(&cfg.mailbox);
            if let Some(id) = identity {
                let name = defaults.fqdn.split('.').next().unwrap_or("").to_owned();
                if !id.eq_ignore_ascii_case(&name) && !id.eq_ignore_ascii_case(&defaults.fqdn) {
                    return Err(usage(format!(
                        "--identity {id}: no such server; this deployment's mailbox server is {name} ({})",
                        defaults.fqdn
                    )));
                }
            }
            let store = tandem_mailbox::open_store(&cfg.mailbox).await.context("cannot open the mailbox store")?;
            client_access::set(&store, &changes).await.map_err(|e| match e {
                client_access::SetError::Invalid(e) => usage(e.to_string()),
                other => Failure::Runtime(other.into()),
            })?;
            for (s, v) in &changes {
                println!("{:<32}: {}", s.label(), if v.is_empty() { "$null" } else { v });
            }
            Ok(())
        }
        ExchangeCommand::SetUserPhoto { identity, picture_data, preview, save, cancel, location } => {
            use tandem_mailbox::photos;
            if picture_data.is_none() && !save && !cancel {
                return Err(usage("nothing to do: pass --picture-data FILE [--preview], --save or --cancel"));
            }
            let cfg = location.config()?;
            let mailbox = photo_mailbox(&cfg, &identity).await?;
            let store = mbx_store(&cfg).await?;
            if let Some(path) = picture_data {
                let bytes = read_picture(&path)?;
                let picture = photos::prepare(bytes)
                    .await
                    .map_err(|e| usage(format!("--picture-data {}: {e}", path.display())))?;
                photos::set_user_photo(&store, &mailbox, &picture, preview).await.context("storing the photo")?;
                let largest = picture.sizes.last().map_or(0, |(p, _)| *p);
                let what = if preview { "preview photo" } else { "photo" };
                println!(
                    "{what} of {identity} set from a {}×{} {} picture: {} sizes up to HR{largest}x{largest}, ETag \"{}\"",
                    picture.width,
                    picture.height,
                    picture.format,
                    picture.sizes.len(),
                    picture.etag
                );
                if preview {
                    println!(
                        "shown only to {identity} until `tandem exchange set-user-photo --identity {identity} --save`"
                    );
                }
            } else if save {
                if !photos::save_preview(&store, &mailbox).await.context("saving the preview")? {
                    return Err(usage(format!(
                        "--save: {identity} has no preview photo; upload one with --picture-data FILE --preview"
                    )));
                }
                println!("the preview photo of {identity} is now the photo");
            } else if photos::cancel_preview(&store, &mailbox).await.context("removing the preview")? {
                println!("the preview photo of {identity} was removed");
            } else {
                return Err(usage(format!("--cancel: {identity} has no preview photo")));
            }
            Ok(())
        }
        ExchangeCommand::RemoveUserPhoto { identity, location } => {
            let cfg = location.config()?;
            let mailbox = photo_mailbox(&cfg, &identity).await?;
            let store = mbx_store(&cfg).await?;
            if !tandem_mailbox::photos::remove_user_photo(&store, &mailbox).await.context("removing the photo")? {
                return Err(usage(format!("--identity {identity}: the user has no photo")));
            }
            println!("the photo of {identity} was removed");
            Ok(())
        }
        ExchangeCommand::EnableMailUser(a) => {
            set_mail_user(&a.location.config()?, &a.identity, &a.external_email_address, false).await
        }
        ExchangeCommand::SetMailUser(a) => {
            set_mail_user(&a.location.config()?, &a.identity, &a.external_email_address, true).await
        }
        ExchangeCommand::DisableMailUser { identity, location } => {
            let dir = super::open_directory(&location.config()?).await?;
            if dir.get(&identity).await?.external_email_address.is_none() {
                return Err(usage(format!("--identity {identity}: not a mail user (`tandem exchange get-mail-user`)")));
            }
            let user = dir.set_external_email_address(&identity, None).await?;
            println!("{} is no longer a mail user", user.name);
            Ok(())
        }
        ExchangeCommand::GetMailUser { identity, json, location } => {
            let dir = super::open_directory(&location.config()?).await?;
            let users: Vec<_> = match &identity {
                Some(id) => {
                    let u = dir.get(id).await?;
                    if u.external_email_address.is_none() {
                        return Err(usage(format!("--identity {id}: not a mail user")));
                    }
                    vec![u]
                }
                None => dir.list().await?.into_iter().filter(|u| u.external_email_address.is_some()).collect(),
            };
            if json {
                return print_json(&serde_json::Value::Array(users.iter().map(mail_user_json).collect()));
            }
            if users.is_empty() {
                println!("no mail users");
            }
            for u in &users {
                let external = u.external_email_address.as_ref().map(ToString::to_string).unwrap_or_default();
                println!("{:<20} {:<32} SMTP:{external}", u.name.to_string(), u.smtp_address.to_string());
            }
            Ok(())
        }
        ExchangeCommand::GetUserPhoto { identity, preview, json, location } => {
            let cfg = location.config()?;
            let mailbox = photo_mailbox(&cfg, &identity).await?;
            let store = mbx_store(&cfg).await?;
            let info =
                tandem_mailbox::photos::user_photo(&store, &mailbox, preview).await.context("reading the photo")?;
            let Some(info) = info else {
                let what = if preview { "preview photo" } else { "photo" };
                return Err(usage(format!("--identity {identity}: the user has no {what}")));
            };
            let sizes: Vec<String> = info.sizes.iter().map(|p| format!("HR{p}x{p}")).collect();
            if json {
                return print_json(&json!({
                    "Identity": identity,
                    "IsPreview": preview,
                    "ETag": info.etag,
                    "WhenChanged": fmt_time(info.changed_at),
                    "Sizes": sizes,
                }));
            }
            println!("Identity    : {identity}");
            println!("IsPreview   : {preview}");
            println!("ETag        : {}", info.etag);
            println!("WhenChanged : {}", fmt_time(info.changed_at));
            println!("Sizes       : {}", sizes.join(", "));
            Ok(())
        }
    }
}

/// Configure-EnterprisePartnerApplication.ps1: the partner for Lync or SharePoint at `url`,
/// replacing one of the same name.
async fn configure_enterprise(cfg: &Config, url: &str, application_type: &str) -> CliResult {
    let app = EnterpriseApp::parse(application_type)
        .ok_or_else(|| usage(format!("--application-type {application_type}: use Lync or SharePoint")))?;
    partner::EXCHANGE.check_url(url)?;
    partner::create(partner::EXCHANGE, cfg, app.name(), true, async |client| {
        partners::enterprise_partner(client, url, app).await.map_err(|e| match e {
            EnterpriseError::Download(e) => Failure::Runtime(e.into()),
            wrong @ EnterpriseError::WrongService { .. } => usage(format!("--auth-metadata-url {url}: {wrong}")),
        })
    })
    .await
}
