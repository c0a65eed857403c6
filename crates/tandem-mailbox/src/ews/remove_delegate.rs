//! RemoveDelegate: removes delegates of the caller's mailbox.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::remove_delegate::Request;

use super::get_delegate::own;
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    own(ctx, &req.mailbox)?;
    let mut out = String::from(
        "<m:RemoveDelegateResponse ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:ResponseMessages>",
    );
    for u in &req.users {
        let removed = ctx.s.data.remove_delegate(ctx.mailbox(), u).await?;
        if removed {
            out.push_str("<m:DelegateUserResponseMessageType ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode></m:DelegateUserResponseMessageType>");
        } else {
            out.push_str(&format!(
                "<m:DelegateUserResponseMessageType ResponseClass=\"Error\"><m:MessageText>{} is not a delegate of this mailbox.</m:MessageText><m:ResponseCode>{}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:DelegateUserResponseMessageType>",
                tandem_xml::escape(u),
                ResponseCode::ErrorNotDelegate.as_str()
            ));
        }
    }
    out.push_str("</m:ResponseMessages></m:RemoveDelegateResponse>");
    Ok(out)
}
