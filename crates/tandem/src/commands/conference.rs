//! `tandem cs new-conference`, `get-conference`, `remove-conference`, `set-meeting-configuration`
//! and `get-meeting-configuration`: conferences as Skype for Business lists them (Get-CsConference
//! style; New-CsConference is our "Meet Now"), and Set-/Get-CsMeetingConfiguration. They write the
//! Front End store; the running focus reads a conference and the configuration at each join, and
//! ends a live conference whose record was removed within seconds, so nothing needs a restart.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_config::{Config, Endpoints};
use tandem_frontend::conference::{self, ConferenceError, ConferenceRequest};
use tandem_frontend::store::{AccessLevel, ConferenceRow, FrontendStore, MeetingConfigurationRow};

use super::{Location, fe_store, fmt_time, open_directory, parse_date, print_json};
use crate::failure::{CliResult, usage};

#[derive(Debug, Subcommand)]
pub enum ConferenceCommand {
    /// A conference now ("Meet Now"), or scheduled with --start/--end: prints its focus URI, join
    /// URL and conference ID.
    NewConference {
        /// The organizer: a SIP URI (sip:alice@litwareinc.com) or account name.
        #[arg(long)]
        organizer: String,
        /// Invited attendees (SIP URIs or account names), comma-separated or repeated.
        #[arg(long, value_delimiter = ',')]
        attendees: Vec<String>,
        #[arg(long, default_value = "")]
        subject: String,
        /// RFC 3339, YYYY-MM-DD (UTC), Unix seconds or `now`.
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        /// Who bypasses the lobby: Locked (only the organizer), Invited, SameEnterprise or
        /// Everyone [default: from the meeting configuration].
        #[arg(long)]
        access_level: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// An organizer's conferences, or one by --id.
    GetConference {
        #[arg(long, required_unless_present = "id")]
        organizer: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Removes a conference; a live one is ended (everyone in it gets a BYE).
    RemoveConference {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        location: Location,
    },
    /// Set-CsMeetingConfiguration (the Global instance): the lobby new meetings get.
    SetMeetingConfiguration {
        #[arg(long, default_value = "Global")]
        identity: String,
        /// Anonymous users may join by default: public meetings are open to Everyone.
        #[arg(long)]
        admit_anonymous_users_by_default: Option<bool>,
        /// New meetings are private: only invited attendees (and the organizer) bypass the lobby.
        #[arg(long)]
        assigned_conference_type_by_default: Option<bool>,
        /// false: no private meetings; every new meeting is public (SameEnterprise, or Everyone
        /// with --admit-anonymous-users-by-default).
        #[arg(long)]
        enable_assigned_conference_type: Option<bool>,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsMeetingConfiguration.
    GetMeetingConfiguration {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
}

/// A user's address of record from a SIP URI or an account name, who must be SIP-enabled.
async fn aor_of(cfg: &Config, flag: &str, who: &str) -> CliResult<String> {
    let dir = open_directory(cfg).await?;
    let user = dir.get(who).await.map_err(|e| usage(format!("{flag} {who}: {e}")))?;
    if !user.can_use_sip() {
        return Err(usage(format!("{flag} {who}: the user is not enabled for SIP (Enable-CsUser)")));
    }
    Ok(user.sip_uri.key())
}

fn show(c: &ConferenceRow) -> serde_json::Value {
    json!({
        "ConferenceId": c.id,
        "FocusUri": c.focus_uri,
        "JoinUrl": c.join_url,
        "PstnConferenceId": c.conference_number,
        "Organizer": c.organizer,
        "Subject": c.subject,
        "Start": c.starts_at.map(fmt_time),
        "End": c.ends_at.map(fmt_time),
        "Attendees": c.attendees,
        "MailboxUid": c.mailbox_uid,
        "AccessLevel": c.access_level.as_str(),
        "WhenCreated": fmt_time(c.created_at),
        "WhenChanged": fmt_time(c.updated_at),
    })
}

fn print_one(c: &ConferenceRow) {
    println!("ConferenceId     : {}", c.id);
    println!("FocusUri         : {}", c.focus_uri);
    println!("JoinUrl          : {}", c.join_url);
    println!("PstnConferenceId : {}", c.conference_number);
    println!("Organizer        : {}", c.organizer);
    println!("Subject          : {}", c.subject);
    println!("Start            : {}", c.starts_at.map(fmt_time).unwrap_or_else(|| "(Meet Now)".into()));
    println!("End              : {}", c.ends_at.map(fmt_time).unwrap_or_default());
    println!("Attendees        : {}", c.attendees.join(", "));
    println!("AccessLevel      : {}", c.access_level.as_str());
}

fn show_config(c: &MeetingConfigurationRow) -> serde_json::Value {
    json!({
        "Identity": "Global",
        "AdmitAnonymousUsersByDefault": c.admit_anonymous_users_by_default,
        "AssignedConferenceTypeByDefault": c.assigned_conference_type_by_default,
        "EnableAssignedConferenceType": c.enable_assigned_conference_type,
        "NewMeetingAccessLevel": c.default_access_level().as_str(),
    })
}

pub async fn run(cmd: ConferenceCommand) -> CliResult {
    match cmd {
        ConferenceCommand::NewConference {
            organizer,
            attendees,
            subject,
            start,
            end,
            access_level,
            json,
            location,
        } => {
            let cfg = location.config()?;
            let organizer = aor_of(&cfg, "--organizer", &organizer).await?;
            let mut invited = Vec::with_capacity(attendees.len());
            for a in attendees.iter().filter(|a| !a.trim().is_empty()) {
                invited.push(aor_of(&cfg, "--attendees", a.trim()).await?);
            }
            let access_level = access_level
                .map(|a| {
                    AccessLevel::parse(&a).ok_or_else(|| {
                        usage(format!("--access-level {a}: use Locked, Invited, SameEnterprise or Everyone"))
                    })
                })
                .transpose()?;
            let req = ConferenceRequest {
                organizer,
                subject,
                starts_at: start.map(|s| parse_date("--start", &s)).transpose()?,
                ends_at: end.map(|s| parse_date("--end", &s)).transpose()?,
                attendees: invited,
                mailbox_uid: None,
                access_level,
            };
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let web = Endpoints::of(&cfg).frontend.https_url;
            let row = conference::create(&fe, &web, &req).await.map_err(|e| match e {
                ConferenceError::Invalid(why) => usage(why),
                e => anyhow::Error::new(e).context("creating the conference").into(),
            })?;
            if json {
                return print_json(&show(&row));
            }
            print_one(&row);
            Ok(())
        }
        ConferenceCommand::GetConference { organizer, id, json, location } => {
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let rows = match (id, organizer) {
                (Some(id), _) => match fe.conference(&id).await.context("reading the conference")? {
                    Some(c) => vec![c],
                    None => {
                        return Err(usage(format!("--id {id}: no such conference (see get-conference --organizer)")));
                    }
                },
                (None, Some(o)) => {
                    let aor = aor_of(&cfg, "--organizer", &o).await?;
                    fe.conferences_of(&aor).await.context("reading the conferences")?
                }
                (None, None) => return Err(usage("pass --organizer sip:… or --id ID")),
            };
            if json {
                print_json(&rows.iter().map(show).collect::<Vec<_>>())
            } else {
                for (i, c) in rows.iter().enumerate() {
                    if i > 0 {
                        println!();
                    }
                    print_one(c);
                }
                Ok(())
            }
        }
        ConferenceCommand::RemoveConference { id, location } => {
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            if !fe.delete_conference(&id).await.context("removing the conference")? {
                return Err(usage(format!("--id {id}: no such conference (see get-conference --organizer)")));
            }
            println!("conference {} removed; a running Front End ends it if it is live", id.to_ascii_uppercase());
            Ok(())
        }
        ConferenceCommand::SetMeetingConfiguration {
            identity,
            admit_anonymous_users_by_default,
            assigned_conference_type_by_default,
            enable_assigned_conference_type,
            location,
        } => {
            if !identity.eq_ignore_ascii_case("global") {
                return Err(usage(format!("--identity {identity}: only Global exists (one pool-wide instance)")));
            }
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let mut c = fe.meeting_configuration().await.context("reading the meeting configuration")?;
            if let Some(v) = admit_anonymous_users_by_default {
                c.admit_anonymous_users_by_default = v;
            }
            if let Some(v) = assigned_conference_type_by_default {
                c.assigned_conference_type_by_default = v;
            }
            if let Some(v) = enable_assigned_conference_type {
                c.enable_assigned_conference_type = v;
            }
            fe.put_meeting_configuration(&c).await.context("storing the meeting configuration")?;
            println!("meeting configuration set: new meetings get access level {}", c.default_access_level().as_str());
            Ok(())
        }
        ConferenceCommand::GetMeetingConfiguration { json, location } => {
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let c = fe.meeting_configuration().await.context("reading the meeting configuration")?;
            let v = show_config(&c);
            if json {
                print_json(&v)
            } else {
                if let Some(o) = v.as_object() {
                    for (k, v) in o {
                        println!("{k:<32}: {v}");
                    }
                }
                Ok(())
            }
        }
    }
}
