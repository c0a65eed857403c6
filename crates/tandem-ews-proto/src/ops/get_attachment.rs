//! GetAttachment: attachments with their content.

pub use super::attachments::IdsRequest as Request;
pub use super::attachments::{AttachmentView, render};

use tandem_xml::{child, children};

use super::BuildRequest;
use super::attachments::{NewAttachment, parse_attachment};
use crate::ns;
use crate::reply::{self, MessageError, ReplyError};

/// GetAttachment as a client sends it: file attachments by id, with their content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub ids: Vec<String>,
}

impl BuildRequest for Fetch {
    const OPERATION: &'static str = "GetAttachment";

    fn to_xml(&self) -> String {
        let mut s = String::from("<m:GetAttachment><m:AttachmentIds>");
        for id in &self.ids {
            s.push_str(&format!("<t:AttachmentId Id=\"{}\"/>", tandem_xml::escape(id)));
        }
        s.push_str("</m:AttachmentIds></m:GetAttachment>");
        s
    }
}

/// Reads a GetAttachment answer: per id asked for, its attachments (content decoded) or the error.
pub fn parse_response(
    doc: &tandem_xml::Document<'_>,
) -> Result<Vec<Result<Vec<NewAttachment>, MessageError>>, ReplyError> {
    let mut out = Vec::new();
    for m in reply::messages(doc, "GetAttachment")? {
        match m.result() {
            Err(e) => out.push(Err(e)),
            Ok(node) => {
                let list = match child(node, ns::MESSAGES, "Attachments") {
                    Some(list) => children(list)
                        .map(parse_attachment)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| ReplyError::unexpected("GetAttachment", e.message))?,
                    None => Vec::new(),
                };
                out.push(Ok(list));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_names_its_ids_and_an_answer_reads_back() {
        let xml = Fetch { ids: vec!["a<1".into()] }.to_xml();
        assert!(xml.contains("<t:AttachmentId Id=\"a&lt;1\"/>"), "{xml}");
        let view = super::AttachmentView {
            id: "att1".into(),
            name: "voicemail.wav".into(),
            content_type: "audio/wav".into(),
            content_id: None,
            size: 3,
            modified: 0,
            is_inline: false,
            content: Some(vec![1, 2, 3]),
            item_element: None,
            item: None,
        };
        let body = format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><m:GetAttachmentResponse xmlns:m=\"{m}\" xmlns:t=\"{t}\"><m:ResponseMessages><m:GetAttachmentResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:Attachments>{a}</m:Attachments></m:GetAttachmentResponseMessage></m:ResponseMessages></m:GetAttachmentResponse></s:Body></s:Envelope>",
            m = ns::MESSAGES,
            t = ns::TYPES,
            a = super::render(&view)
        );
        let doc = tandem_xml::Document::parse(&body).unwrap();
        let got = parse_response(&doc).unwrap();
        let a = &got[0].as_ref().unwrap()[0];
        assert_eq!(
            (a.id.as_deref(), a.content.as_slice(), a.content_type.as_str()),
            (Some("att1"), &[1u8, 2, 3][..], "audio/wav")
        );
    }
}
