//! GetUserPhoto (MS-OXWSPHOTO): a mailbox user's photo in one of the high-resolution sizes.
//!
//! The request is `m:GetUserPhoto{ m:Email, m:SizeRequested, m:TypeRequested? }`; the answer is
//! `m:GetUserPhotoResponse`, itself a response message (ResponseClass, ResponseCode…) followed by
//! `m:HasChanged` and, when the photo is sent, `m:PictureData` (base64 JPEG). The same sizes are
//! served by the REST form `GET …/Exchange.asmx/s/GetUserPhoto?email=…&size=…`.

use base64::Engine as _;
use tandem_xml::{Node, text};

use super::{BuildRequest, need, opt};
use crate::reply::{Message, MessageError, ReplyError};
use crate::{ProtoError, ResponseCode, ns};

/// UserPhotoSizeType: the square sizes Exchange 2013 keeps, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhotoSize {
    HR48x48,
    HR64x64,
    HR96x96,
    HR120x120,
    HR240x240,
    HR360x360,
    HR432x432,
    HR504x504,
    HR648x648,
}

impl PhotoSize {
    pub const ALL: [PhotoSize; 9] = [
        PhotoSize::HR48x48,
        PhotoSize::HR64x64,
        PhotoSize::HR96x96,
        PhotoSize::HR120x120,
        PhotoSize::HR240x240,
        PhotoSize::HR360x360,
        PhotoSize::HR432x432,
        PhotoSize::HR504x504,
        PhotoSize::HR648x648,
    ];

    /// The width (and height) in pixels.
    pub fn pixels(self) -> u32 {
        match self {
            PhotoSize::HR48x48 => 48,
            PhotoSize::HR64x64 => 64,
            PhotoSize::HR96x96 => 96,
            PhotoSize::HR120x120 => 120,
            PhotoSize::HR240x240 => 240,
            PhotoSize::HR360x360 => 360,
            PhotoSize::HR432x432 => 432,
            PhotoSize::HR504x504 => 504,
            PhotoSize::HR648x648 => 648,
        }
    }

    /// The size code as the schema spells it (`HR96x96`).
    pub fn code(self) -> &'static str {
        match self {
            PhotoSize::HR48x48 => "HR48x48",
            PhotoSize::HR64x64 => "HR64x64",
            PhotoSize::HR96x96 => "HR96x96",
            PhotoSize::HR120x120 => "HR120x120",
            PhotoSize::HR240x240 => "HR240x240",
            PhotoSize::HR360x360 => "HR360x360",
            PhotoSize::HR432x432 => "HR432x432",
            PhotoSize::HR504x504 => "HR504x504",
            PhotoSize::HR648x648 => "HR648x648",
        }
    }

    /// Reads a size code. The x is compared without case: the reference's syntax line writes
    /// `HR96X96`, and Skype for Business's UCWA asks for `HR64X64`.
    pub fn parse(code: &str) -> Option<PhotoSize> {
        PhotoSize::ALL.into_iter().find(|s| s.code().eq_ignore_ascii_case(code.trim()))
    }
}

/// TypeRequested: the user photo (the default) or the profile header photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoType {
    UserPhoto,
    ProfileHeaderPhoto,
}

impl PhotoType {
    fn code(self) -> &'static str {
        match self {
            PhotoType::UserPhoto => "UserPhoto",
            PhotoType::ProfileHeaderPhoto => "ProfileHeaderPhoto",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub email: String,
    pub size: PhotoSize,
    pub kind: PhotoType,
}

/// Longest address accepted in Email (RFC 5321's path limit).
const MAX_EMAIL: usize = 256;

impl Request {
    pub fn new(email: impl Into<String>, size: PhotoSize) -> Request {
        Request { email: email.into(), size, kind: PhotoType::UserPhoto }
    }

    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let email = text(need(op, "Email")?).trim().to_owned();
        if email.is_empty() || email.len() > MAX_EMAIL {
            return Err(ProtoError::schema("GetUserPhoto needs an Email address"));
        }
        let size_text = text(need(op, "SizeRequested")?);
        let size = PhotoSize::parse(&size_text)
            .ok_or_else(|| ProtoError::schema(format!("SizeRequested `{size_text}` is not a UserPhotoSizeType")))?;
        let kind = match opt(op, "TypeRequested").map(text) {
            None => PhotoType::UserPhoto,
            Some(t) if t.trim() == "UserPhoto" => PhotoType::UserPhoto,
            Some(t) if t.trim() == "ProfileHeaderPhoto" => PhotoType::ProfileHeaderPhoto,
            Some(t) => return Err(ProtoError::schema(format!("TypeRequested `{t}` is not a UserPhotoTypeType"))),
        };
        Ok(Request { email, size, kind })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "GetUserPhoto";

    fn to_xml(&self) -> String {
        let kind = match self.kind {
            PhotoType::UserPhoto => String::new(),
            other => format!("<m:TypeRequested>{}</m:TypeRequested>", other.code()),
        };
        format!(
            "<m:GetUserPhoto><m:Email>{}</m:Email><m:SizeRequested>{}</m:SizeRequested>{kind}</m:GetUserPhoto>",
            tandem_xml::escape(&self.email),
            self.size.code()
        )
    }
}

/// The answer with the photo (`Some`), or, when the caller's `If-None-Match` names the photo
/// it holds, `HasChanged` false and no picture (`None`).
pub fn render(picture: Option<&[u8]>) -> String {
    match picture {
        Some(bytes) => format!(
            "<m:GetUserPhotoResponse ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:HasChanged>true</m:HasChanged><m:PictureData>{}</m:PictureData></m:GetUserPhotoResponse>",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
        None => "<m:GetUserPhotoResponse ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:HasChanged>false</m:HasChanged></m:GetUserPhotoResponse>".to_owned(),
    }
}

/// The error form (ResponseClass Error; HasChanged is required by the schema).
pub fn render_error(code: ResponseCode, message: &str) -> String {
    format!(
        "<m:GetUserPhotoResponse ResponseClass=\"Error\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:HasChanged>false</m:HasChanged></m:GetUserPhotoResponse>",
        tandem_xml::escape(message),
        code.as_str()
    )
}

/// What a GetUserPhoto answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub has_changed: bool,
    /// The JPEG bytes; `None` when the photo has not changed.
    pub picture: Option<Vec<u8>>,
}

/// Reads a GetUserPhoto answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<Photo, MessageError>, ReplyError> {
    let op = crate::reply::response(doc, "GetUserPhoto")?;
    if let Err(e) = Message::of(op).result() {
        return Ok(Err(e));
    }
    let has_changed = tandem_xml::child(op, ns::MESSAGES, "HasChanged")
        .map(text)
        .and_then(|t| crate::parse_bool(&t))
        .ok_or_else(|| ReplyError::unexpected("GetUserPhoto", "a success without HasChanged"))?;
    let picture = match tandem_xml::child(op, ns::MESSAGES, "PictureData") {
        None => None,
        Some(p) => {
            let cleaned: String = text(p).chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(cleaned)
                    .map_err(|e| ReplyError::unexpected("GetUserPhoto", format!("PictureData is not base64: {e}")))?,
            )
        }
    };
    Ok(Ok(Photo { has_changed, picture }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ops::{self, Operation};

    fn parse_op(xml: &str) -> Result<ops::Request, ProtoError> {
        let env = ops::request_envelope("Exchange2013", xml);
        let doc = tandem_xml::parse(env.as_bytes(), tandem_xml::Limits::default()).unwrap();
        let env = tandem_xml::soap::Envelope::of(&doc).unwrap();
        ops::parse(&env)
    }

    #[test]
    fn the_request_is_written_and_read_back() {
        let mut req = Request::new("alice@litwareinc.com", PhotoSize::HR96x96);
        let back = parse_op(&req.to_xml()).unwrap();
        assert_eq!(back.operation, Operation::GetUserPhoto(req.clone()));
        req.kind = PhotoType::ProfileHeaderPhoto;
        assert!(req.to_xml().contains("<m:TypeRequested>ProfileHeaderPhoto</m:TypeRequested>"));
        assert_eq!(parse_op(&req.to_xml()).unwrap().operation, Operation::GetUserPhoto(req));
    }

    #[test]
    fn sizes_and_bad_requests() {
        assert_eq!(PhotoSize::parse("HR96X96"), Some(PhotoSize::HR96x96));
        assert_eq!(PhotoSize::parse("HR1024xN"), None);
        assert!(PhotoSize::ALL.windows(2).all(|w| w[0].pixels() < w[1].pixels()));
        let bad = parse_op(
            "<m:GetUserPhoto><m:Email>a@b.c</m:Email><m:SizeRequested>HR50x50</m:SizeRequested></m:GetUserPhoto>",
        );
        assert_eq!(bad.unwrap_err().code, ResponseCode::ErrorSchemaValidation);
        let none = parse_op("<m:GetUserPhoto><m:SizeRequested>HR48x48</m:SizeRequested></m:GetUserPhoto>");
        assert_eq!(none.unwrap_err().code, ResponseCode::ErrorSchemaValidation);
    }

    #[test]
    fn answers_are_written_and_read_back() {
        let read = |body: String| {
            let text = crate::render::envelope(&body);
            let doc = crate::reply::parse(&text).unwrap();
            parse_response(&doc).unwrap()
        };
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        assert_eq!(read(render(Some(&jpeg))).unwrap(), Photo { has_changed: true, picture: Some(jpeg.to_vec()) });
        assert_eq!(read(render(None)).unwrap(), Photo { has_changed: false, picture: None });
        let e = read(render_error(ResponseCode::ErrorItemNotFound, "no photo")).unwrap_err();
        assert_eq!((e.code.as_str(), e.text.as_str()), ("ErrorItemNotFound", "no photo"));
    }
}
