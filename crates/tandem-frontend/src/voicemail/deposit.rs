//! A recorded message into the callee's Inbox through the Exchange connector (EWS with S2S
//! tokens acting as the callee), in the form Exchange UM wrote call-answering voicemail
//! (MS-OXOUM): class `IPM.Note.Microsoft.Voicemail.UM.CA`, the recording as an `audio/wav`
//! attachment, the duration, the caller's number and name in the properties Outlook-style
//! clients read, and a text body with the caller and time.

use tandem_ews_proto::ops::attachments::NewAttachment;
use tandem_ews_proto::ops::create_item::{self, ItemData};
use tandem_ews_proto::types::{ExtendedField, FolderRef};

use crate::exchange_connector::{ConnectorError, ExchangeConnector, Hop, ItemRef, at};
use crate::media::wav;

/// The message class of a call-answering voicemail.
pub const ITEM_CLASS: &str = "IPM.Note.Microsoft.Voicemail.UM.CA";
/// The attachment's name.
pub const ATTACHMENT_NAME: &str = "voicemail.wav";

/// MS-OXPROPS: PidTagVoiceMessageDuration (seconds), PidTagSenderTelephoneNumber,
/// PidTagVoiceMessageSenderName, PidTagVoiceMessageAttachmentOrder.
const DURATION: (u32, &str) = (0x6801, "Integer");
const CALLER_NUMBER: (u32, &str) = (0x6802, "String");
const CALLER_NAME: (u32, &str) = (0x6803, "String");
const ATTACHMENT_ORDER: (u32, &str) = (0x6805, "String");

fn tag((tag, property_type): (u32, &str)) -> ExtendedField {
    ExtendedField {
        distinguished_set: None,
        set_id: None,
        tag: Some(tag),
        name: None,
        id: None,
        property_type: property_type.to_owned(),
    }
}

/// One recorded message.
#[derive(Debug, Clone)]
pub struct Voicemail {
    /// The caller's SIP URI (or `tel:` number).
    pub caller_uri: String,
    /// The caller's name, when the directory or the From header gave one.
    pub caller_name: Option<String>,
    /// The callee's mailbox.
    pub callee_smtp: String,
    /// When the recording started (Unix seconds).
    pub started_at: i64,
    /// 8 kHz linear samples.
    pub samples: Vec<i16>,
}

impl Voicemail {
    /// Whole seconds, rounded, at least 1 for anything recorded.
    pub fn duration_seconds(&self) -> u32 {
        let s = (self.samples.len() as u64 + 4000) / 8000;
        u32::try_from(s.max(u64::from(!self.samples.is_empty()))).unwrap_or(u32::MAX)
    }

    /// The caller as shown: the name, else the number or address without its scheme.
    pub fn caller(&self) -> String {
        self.caller_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| {
            self.caller_uri.split_once(':').map_or(self.caller_uri.as_str(), |(_, rest)| rest).to_owned()
        })
    }

    pub fn subject(&self) -> String {
        let d = self.duration_seconds();
        format!("Voice Mail from {} ({d} second{})", self.caller(), if d == 1 { "" } else { "s" })
    }

    /// The item CreateItem writes.
    pub fn item(&self) -> Result<ItemData, ConnectorError> {
        let wav = wav::to_wav(&self.samples).map_err(|e| ConnectorError {
            hop: Hop::Ews,
            message: e.to_string(),
            hint: "the recording could not be encoded".into(),
        })?;
        let when = tandem_ews_proto::format_datetime(self.started_at);
        let body = format!(
            "You received a voice mail from {} ({}) at {when}, {} seconds long. The recording is attached.",
            self.caller(),
            self.caller_uri,
            self.duration_seconds()
        );
        let number = self.caller_uri.split_once(':').map_or(self.caller_uri.as_str(), |(_, r)| r).to_owned();
        Ok(ItemData::new("Message")
            .with_item_class(ITEM_CLASS)
            .with_subject(&self.subject())
            .with_body("Text", &body)
            .with_is_read(false)
            .with_extended(tag(DURATION), vec![self.duration_seconds().to_string()])
            .with_extended(tag(CALLER_NUMBER), vec![number])
            .with_extended(tag(CALLER_NAME), vec![self.caller()])
            .with_extended(tag(ATTACHMENT_ORDER), vec![ATTACHMENT_NAME.to_owned()])
            .with_attachment(NewAttachment::file(ATTACHMENT_NAME, "audio/wav", wav)))
    }
}

/// Writes `vm` into the callee's Inbox; the item's id.
pub async fn deposit(connector: &ExchangeConnector, vm: &Voicemail) -> Result<ItemRef, ConnectorError> {
    let mailbox = connector.mailbox(&vm.callee_smtp).await?;
    let req = create_item::Request::save(FolderRef::distinguished("inbox"), vec![vm.item()?]);
    let ids = connector.client().create_item(&mailbox, &req).await.map_err(at(Hop::Ews))?;
    let id = ids.into_iter().next().ok_or_else(|| ConnectorError {
        hop: Hop::Ews,
        message: "CreateItem returned no ItemId".into(),
        hint: "see the mailbox's log".into(),
    })?;
    Ok(ItemRef { id: id.id, change_key: id.change_key.unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(seconds: usize, name: Option<&str>) -> Voicemail {
        Voicemail {
            caller_uri: "sip:alice@litwareinc.com".into(),
            caller_name: name.map(str::to_owned),
            callee_smtp: "bob@litwareinc.com".into(),
            started_at: 1_798_243_200,
            samples: vec![0; seconds * 8000],
        }
    }

    #[test]
    fn subjects_name_the_caller_and_the_length() {
        assert_eq!(vm(7, Some("Alice Anderson")).subject(), "Voice Mail from Alice Anderson (7 seconds)");
        assert_eq!(vm(1, None).subject(), "Voice Mail from alice@litwareinc.com (1 second)");
        let short = Voicemail { samples: vec![0; 100], ..vm(0, None) };
        assert_eq!(short.duration_seconds(), 1, "anything recorded is at least a second");
    }

    #[test]
    fn the_item_carries_the_class_the_properties_and_the_recording() {
        let item = vm(2, Some("Alice")).item().unwrap();
        assert_eq!(item.item_class.as_deref(), Some(ITEM_CLASS));
        assert_eq!(item.attachments.len(), 1);
        assert_eq!(item.attachments[0].content_type, "audio/wav");
        assert_eq!(wav::from_wav(&item.attachments[0].content).unwrap().len(), 16000);
        let values: Vec<(u32, String)> = item.extended.iter().map(|(f, v)| (f.tag.unwrap_or(0), v.join(","))).collect();
        assert!(values.contains(&(0x6801, "2".into())) && values.contains(&(0x6802, "alice@litwareinc.com".into())));
    }
}
