//! `tandem cs set-client-policy`, `get-client-policy` and `get-presence`: the calendar and
//! archiving settings of Set-CsClientPolicy (global, or one user's with `--identity sip:…`), which the running Front
//! End reads within a second, and the presence it shows for a user with the reason (which
//! publication or calendar item decided it), as the Front End last recorded it.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_frontend::store::{ClientPolicyRow, FrontendStore, GLOBAL_POLICY};
use tandem_types::SipUri;

use super::{Location, fe_store, fmt_time, open_directory, print_json};
use crate::failure::{CliResult, usage};

#[derive(Debug, Subcommand)]
pub enum PresenceCommand {
    /// Set-CsClientPolicy: the calendar presence settings, global or for one user.
    SetClientPolicy {
        /// `global`, or a user's SIP URI (sip:bob@litwareinc.com) for their own settings.
        #[arg(long, default_value = "global")]
        identity: String,
        /// true: no presence from the calendar or out-of-office settings.
        #[arg(long)]
        disable_calendar_presence: Option<bool>,
        /// false: watchers see the meeting's subject and location (never for private items).
        #[arg(long)]
        disable_meeting_subject_and_location: Option<bool>,
        /// true: meetings do not show (out of office still does).
        #[arg(long)]
        disable_free_busy_info: Option<bool>,
        /// hh:mm:ss, 00:00:01 to 01:00:00: accepted and shown as Set-CsClientPolicy has it; the
        /// Front End polls nothing (calendar, out of office and working hours are pushed).
        #[arg(long)]
        web_service_poll_interval: Option<String>,
        /// true: watchers see "Off Work" (away) outside the user's working hours (the WorkHours
        /// of their calendar, as Outlook sets them). Tandem's setting; off by default.
        #[arg(long)]
        enable_off_work_presence: Option<bool>,
        /// false: the Front End saves no IM transcripts or missed IMs in the user's mailbox
        /// (on by default).
        #[arg(long = "enable-im-auto-archiving")]
        enable_im_auto_archiving: Option<bool>,
        /// false: no call logs or missed calls in the user's mailbox (on by default).
        #[arg(long)]
        enable_call_log_auto_archiving: Option<bool>,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsClientPolicy: the calendar presence settings in force.
    GetClientPolicy {
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// The presence a user shows to watchers, and what decided it.
    GetPresence {
        /// The user's SIP URI (sip:bob@litwareinc.com).
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

/// hh:mm:ss (or a number of seconds) within Set-CsClientPolicy's range for WebServicePollInterval.
fn poll_interval(text: &str) -> CliResult<i64> {
    let bad = || usage(format!("--web-service-poll-interval {text}: expected hh:mm:ss from 00:00:01 to 01:00:00"));
    let parts: Vec<&str> = text.split(':').collect();
    let secs = match parts.as_slice() {
        [s] => s.parse::<i64>().map_err(|_| bad())?,
        [h, m, s] => {
            let n = |v: &str| v.parse::<i64>().map_err(|_| bad());
            let (h, m, s) = (n(h)?, n(m)?, n(s)?);
            if !(0..60).contains(&m) || !(0..60).contains(&s) || h < 0 {
                return Err(bad());
            }
            h * 3600 + m * 60 + s
        }
        _ => return Err(bad()),
    };
    if (1..=3600).contains(&secs) { Ok(secs) } else { Err(bad()) }
}

fn hms(secs: i64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `global`, or the lookup key of an existing user's SIP URI.
pub(crate) async fn identity_key(location: &Location, identity: &str) -> CliResult<String> {
    if identity.eq_ignore_ascii_case(GLOBAL_POLICY) {
        return Ok(GLOBAL_POLICY.to_owned());
    }
    let uri: SipUri = identity.parse().map_err(|e: tandem_types::ParseError| {
        usage(format!("--identity {identity}: {e} (global or sip:user@domain)"))
    })?;
    let key = uri.key();
    match open_directory(&location.config()?).await?.find(&key).await? {
        Some(_) => Ok(key),
        None => Err(usage(format!("--identity {identity}: no such user (`tandem user list`)"))),
    }
}

pub async fn run(cmd: PresenceCommand) -> CliResult {
    match cmd {
        PresenceCommand::SetClientPolicy {
            identity,
            disable_calendar_presence,
            disable_meeting_subject_and_location,
            disable_free_busy_info,
            web_service_poll_interval,
            enable_off_work_presence,
            enable_im_auto_archiving,
            enable_call_log_auto_archiving,
            location,
        } => {
            let key = identity_key(&location, &identity).await?;
            let poll = web_service_poll_interval.as_deref().map(poll_interval).transpose()?;
            if disable_calendar_presence.is_none()
                && disable_meeting_subject_and_location.is_none()
                && disable_free_busy_info.is_none()
                && poll.is_none()
                && enable_off_work_presence.is_none()
                && enable_im_auto_archiving.is_none()
                && enable_call_log_auto_archiving.is_none()
            {
                return Err(usage("nothing to set: pass at least one setting (see --help)"));
            }
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let row = ClientPolicyRow {
                identity: key.clone(),
                disable_calendar_presence,
                disable_meeting_subject_and_location,
                disable_free_busy_info,
                web_service_poll_seconds: poll,
                enable_off_work_presence,
                enable_im_auto_archiving,
                enable_call_log_auto_archiving,
            };
            fe.set_client_policy(&row).await.context("saving the client policy")?;
            println!("client policy {key} saved; the running Front End applies it within a second");
            Ok(())
        }
        PresenceCommand::GetClientPolicy { identity, location, json } => {
            let want = match identity {
                Some(i) => Some(identity_key(&location, &i).await?),
                None => None,
            };
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let rows = fe.client_policies().await.context("reading the client policies")?;
            let shown: Vec<serde_json::Value> = rows
                .iter()
                .filter(|r| want.as_deref().is_none_or(|w| w == r.identity))
                .map(|r| {
                    json!({"Identity": r.identity,
                           "DisableCalendarPresence": r.disable_calendar_presence,
                           "DisableMeetingSubjectAndLocation": r.disable_meeting_subject_and_location,
                           "DisableFreeBusyInfo": r.disable_free_busy_info,
                           "WebServicePollInterval": r.web_service_poll_seconds.map(hms),
                           "EnableOffWorkPresence": r.enable_off_work_presence,
                           "EnableIMAutoArchiving": r.enable_im_auto_archiving,
                           "EnableCallLogAutoArchiving": r.enable_call_log_auto_archiving})
                })
                .collect();
            if json {
                return print_json(&shown);
            }
            if shown.is_empty() {
                println!(
                    "no client policy set: calendar presence on, meeting subject and location hidden, no Off Work outside working hours"
                );
            }
            for v in &shown {
                for (k, val) in v.as_object().into_iter().flatten() {
                    let text = if val.is_null() { "$null (inherited)".to_owned() } else { val.to_string() };
                    println!("{k:<34}: {}", text.trim_matches('"'));
                }
                println!();
            }
            Ok(())
        }
        PresenceCommand::GetPresence { identity, location, json } => {
            let key = identity_key(&location, &identity).await?;
            if key == GLOBAL_POLICY {
                return Err(usage("--identity: a user's SIP URI (sip:bob@litwareinc.com)"));
            }
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let row = fe.presence_status(Some(&key)).await.context("reading the presence records")?.into_iter().next();
            let Some(r) = row else {
                let msg = "offline: no signed-in endpoint and no watcher, so the Front End does not follow this user's presence now";
                return if json {
                    print_json(&json!({"Identity": key, "Availability": "offline", "Reason": msg}))
                } else {
                    println!("{key}: {msg}");
                    Ok(())
                };
            };
            if json {
                return print_json(&json!({"Identity": r.aor, "Availability": r.availability, "Activity": r.activity,
                    "Note": r.note, "Reason": r.reason, "Calendar": r.calendar, "CalendarError": r.calendar_error,
                    "UpdatedAt": fmt_time(r.updated_at)}));
            }
            println!("Identity     : {}", r.aor);
            println!("Availability : {}", r.availability);
            println!("Activity     : {}", r.activity.as_deref().unwrap_or("-"));
            println!("Note         : {}", r.note.as_deref().unwrap_or("-"));
            println!("Reason       : {}", r.reason);
            match &r.calendar_error {
                Some(e) => println!("Calendar     : {} ({e})", r.calendar),
                None => println!("Calendar     : {}", r.calendar),
            }
            println!("Updated      : {}", fmt_time(r.updated_at));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_intervals_are_bounded_like_the_cmdlet() {
        assert_eq!(poll_interval("00:00:02").ok(), Some(2));
        assert_eq!(poll_interval("01:00:00").ok(), Some(3600));
        assert_eq!(poll_interval("90").ok(), Some(90));
        for bad in ["00:00:00", "01:00:01", "00:61:00", "x", "1:2"] {
            assert!(poll_interval(bad).is_err(), "{bad}");
        }
        assert_eq!(hms(3725), "01:02:05");
    }
}
